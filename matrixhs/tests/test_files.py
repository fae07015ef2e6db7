"""The data dir's files are the server user's alone: keys, secrets, the SQLite database."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db.utils import ConnectionHandler
from django.test import SimpleTestCase

from matrixhs.files import read_or_create


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def usual_umask() -> Iterator[None]:
    """The common umask 022, under which files are created world-readable by default."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


class PrivateFilesTests(SimpleTestCase):
    def setUp(self) -> None:
        self.root = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.root)

    def test_created_keys_and_their_dir_are_private(self) -> None:
        data = self.root / "data"
        with usual_umask():
            content = read_or_create(data / "signing.key", lambda: "ed25519 a key")
        self.assertEqual(content, "ed25519 a key")
        self.assertEqual(mode(data), 0o700)
        self.assertEqual(mode(data / "signing.key"), 0o600)
        self.assertEqual(sorted(p.name for p in data.iterdir()), ["signing.key"])
        self.assertEqual(read_or_create(data / "signing.key", lambda: "other"), "ed25519 a key")

    def test_a_new_sqlite_database_is_private_with_its_wal(self) -> None:
        name = self.root / "data" / "homeserver.sqlite3"
        name.parent.mkdir(mode=0o700)
        settings_dict = {
            "ENGINE": "matrixhs.sqlite_backend",
            "NAME": str(name),
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;"},
        }
        handler = ConnectionHandler({"default": settings_dict})
        wrapper = handler["default"]
        # The backend's own connect step (pytest-django keeps Django's ensure_connection
        # from reaching a database outside a db test).
        with usual_umask():
            raw = wrapper.get_new_connection(wrapper.get_connection_params())
        try:
            raw.execute("CREATE TABLE t (x integer)")
            raw.execute("INSERT INTO t VALUES (1)")
            for path in (name, name.with_name(name.name + "-wal")):
                self.assertEqual(mode(path), 0o600, path)
        finally:
            raw.close()
