"""SQLite with write transactions taken in turn, in the process, before SQLite's lock.

SQLite allows one writer; our transactions start with BEGIN IMMEDIATE, and a writer
that finds the lock taken sleeps in SQLite's busy handler with growing back-off. Under
twenty concurrent senders that makes a few requests wait seconds while others pass.
Here a writer first waits on a process-wide lock, which hands the database over as soon
as the previous transaction ends. SQLite's own lock still guards correctness (and other
processes, such as `manage.py` commands, still wait on it as usual).

The in-memory database of the tests is a shared-cache database, where SQLite locks
tables between connections and answers "database table is locked" at once instead of
waiting in the busy handler. There readers do not take table locks (read_uncommitted,
which only applies in shared-cache mode) and a statement that meets a lock is retried,
as the busy handler would, for up to ``_LOCKED_RETRY_S``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from django.db.backends.sqlite3 import base

from matrixhs.files import create_private_file

_write_lock = threading.Lock()
_LOCKED_RETRY_S = 10.0


def _retry_while_locked(run: Any) -> Any:
    deadline = time.monotonic() + _LOCKED_RETRY_S
    delay = 0.0005
    while True:
        try:
            return run()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


class SharedCacheCursor(base.SQLiteCursorWrapper):
    """A cursor that waits out shared-cache table locks (the in-memory test database)."""

    def execute(self, query: str, params: Any = None) -> Any:
        return _retry_while_locked(lambda: super(SharedCacheCursor, self).execute(query, params))

    def executemany(self, query: str, param_list: Any) -> Any:
        params = list(param_list)
        return _retry_while_locked(
            lambda: super(SharedCacheCursor, self).executemany(query, params)
        )


class DatabaseWrapper(base.DatabaseWrapper):
    _holds_write_lock = False

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        """SQLite would create a missing database file with the umask's mode (usually
        world-readable): create it 0600 first. Its -wal and -shm files take its mode."""
        name = str(conn_params.get("database", ""))
        if name and not self.is_in_memory_db() and not name.startswith("file:"):
            create_private_file(Path(name))
        connection = super().get_new_connection(conn_params)
        if self.is_in_memory_db():
            connection.execute("PRAGMA read_uncommitted = 1")
        return connection

    def create_cursor(self, name: str | None = None) -> Any:
        if self.is_in_memory_db():
            return self.connection.cursor(factory=SharedCacheCursor)
        return super().create_cursor(name)

    def _start_transaction_under_autocommit(self) -> None:
        _write_lock.acquire()
        self._holds_write_lock = True
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_write_lock()
            raise

    def _release_write_lock(self) -> None:
        if self._holds_write_lock:
            self._holds_write_lock = False
            _write_lock.release()

    def _commit(self) -> Any:
        try:
            return super()._commit()
        finally:
            self._release_write_lock()

    def _rollback(self) -> Any:
        try:
            return super()._rollback()
        finally:
            self._release_write_lock()

    def _close(self) -> Any:
        try:
            return super()._close()
        finally:
            self._release_write_lock()
