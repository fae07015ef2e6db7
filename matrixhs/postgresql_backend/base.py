"""PostgreSQL through psycopg's pool, failing fast while the server is down, and serving
again as soon as it is back.

Stock behaviour during an outage: a request waits for a pooled connection for the whole
pool timeout (30 s) and then fails; after the outage the pool reconnects on its own
back-off (seconds after the server is back). Here:

- A request waits for a pooled connection in slices of ``FIRST_WAIT_S``. After each
  slice without one, one waiting request at a time makes a direct connection attempt,
  which tells a busy pool (wait on, up to the pool timeout) from a server that is down
  (matrixhs.outages.database marked down: every waiting request fails at once).
- While the database is down, requests fail at once (503 with Retry-After, rendered in
  matrixhs.errors), except one every probe interval, which tries a direct connection.
- When that probe connects, the outage is over: the pool, with its back-off, is replaced
  by a fresh one, which connects at once.
- A lent connection is checked with an empty statement only if it has not been lent in
  the last RECHECK_AFTER_S or the server has written to it since (it does when it ends a
  session): under load, connections go out again within milliseconds, and a check on
  each lending cost a round trip per request.
"""

from __future__ import annotations

import select
import threading
import time
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg import IsolationLevel
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from matrixhs import outages
from matrixhs.outages import DatabaseUnavailable

#: How long a request waits for a pooled connection before it checks that the server is
#: there at all (then it waits for the rest of the pool timeout if it is).
FIRST_WAIT_S = 1.0
#: How long the direct connection attempt of a check may take.
PROBE_TIMEOUT_S = 2

#: A connection lent within this many seconds is lent again without a round trip to check
#: it (a check costs about as much CPU as a cheap request's own query).
RECHECK_AFTER_S = 1.0

_reset_lock = threading.Lock()
_probe_lock = threading.Lock()


def _usable(connection: Any) -> bool:
    """Whether a pooled connection still works. One lent within RECHECK_AFTER_S is checked
    without a round trip: an idle connection has nothing to read unless the server ended
    it (a restart, an administrator: the server says so and closes the socket), so only
    then, or after a longer idle time, is it checked with an empty statement."""
    now = time.monotonic()
    recent = now - getattr(connection, "_matrixhs_lent_at", -RECHECK_AFTER_S) < RECHECK_AFTER_S
    if not recent or _has_input(connection):
        try:
            ConnectionPool.check_connection(connection)
        except psycopg.Error:
            return False
    connection._matrixhs_lent_at = now
    return True


def _has_input(connection: Any) -> bool:
    try:
        readable, _, _ = select.select([connection.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        outages.database.in_use()

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        pool = self.pool
        if pool is None:
            return super().get_new_connection(conn_params)
        if outages.database.down:
            if not outages.database.should_try():
                raise DatabaseUnavailable("the database is unavailable")
            self._probe(conn_params)  # raises while it is still down
            pool = self._replace_pool()
            outages.database.succeeded()
        connection = self._lend(pool, conn_params)
        self.isolation_level = IsolationLevel.READ_COMMITTED
        isolation = self.settings_dict["OPTIONS"].get("isolation_level")
        if isolation is not None:
            self.isolation_level = IsolationLevel(isolation)
            connection.isolation_level = self.isolation_level
        return connection

    def _lend(self, pool: Any, conn_params: dict[str, Any]) -> Any:
        """A pooled connection, waited for in slices of FIRST_WAIT_S up to the pool's
        timeout; between slices, one waiting request at a time checks the server.

        Raises:
            DatabaseUnavailable: the server is down (found by this request or another).
            PoolTimeout: the server is up, but the pool lent nothing in time.
        """
        deadline = time.monotonic() + pool.timeout
        while True:
            pool.open()
            try:
                connection = pool.getconn(
                    timeout=max(0.01, min(FIRST_WAIT_S, deadline - time.monotonic()))
                )
                if _usable(connection):
                    return connection
                pool.putconn(connection)  # broken: the pool drops it
                continue
            except PoolClosed as exc:  # replaced by another request's recovery just now
                if self.pool is pool:
                    raise DatabaseUnavailable("the connection pool is closed") from exc
                pool = self.pool
                continue
            except PoolTimeout:
                if outages.database.down:
                    raise DatabaseUnavailable("the database is unavailable") from None
                if time.monotonic() >= deadline:
                    raise
            if _probe_lock.acquire(blocking=False):
                try:
                    self._probe(conn_params)  # raises if the server is down
                    if pool.get_stats().get("pool_size", 0) < (pool.max_size or 1):
                        # Not all lent: the pool failed to connect, and is backing off.
                        pool = self._replace_pool()
                finally:
                    _probe_lock.release()

    def _probe(self, conn_params: dict[str, Any]) -> None:
        """One direct connection attempt.

        Raises:
            DatabaseUnavailable: it could not connect (the database is marked down).
        """
        params = {
            k: v
            for k, v in conn_params.items()
            if k not in ("cursor_factory", "context", "prepare_threshold")
        }
        try:
            psycopg.connect(**params, connect_timeout=PROBE_TIMEOUT_S).close()
        except psycopg.OperationalError as exc:
            outages.database.failed(exc)
            raise DatabaseUnavailable("the database is unavailable") from exc

    def _replace_pool(self) -> Any:
        """Drop the pool that was backing off its reconnection attempts; make a new one."""
        with _reset_lock:
            old = self._connection_pools.pop(self.alias, None)
        if old is not None:
            threading.Thread(target=old.close, kwargs={"timeout": 1}, daemon=True).start()
        return self.pool
