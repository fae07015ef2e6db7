"""Files in the data dir: the secret key, the signing key and the SQLite database, all
readable by the server's user only (files 0600, created directories 0700)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) for the server's user only, if missing."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def create_private_file(path: Path, content: str = "") -> bool:
    """Create ``path`` with ``content``, 0600 from the start (no window in which another
    user could open it). False if it exists already."""
    make_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as file:
        file.write(content)
    return True


def read_or_create(path: Path, make_content: Callable[[], str]) -> str:
    """Return the contents of ``path``, creating it with ``make_content()`` if missing.

    The new file is written aside and linked into place, so processes starting at the
    same time agree on one content; it is readable by its owner only.
    """
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.unlink(missing_ok=True)  # left over by a crash
        create_private_file(tmp, make_content())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text()
