"""Files in the data dir that are created once and then kept (secret key, signing key)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make_content: Callable[[], str]) -> str:
    """Return the contents of ``path``, creating it with ``make_content()`` if missing.

    The new file is written aside and linked into place, so processes starting at the
    same time agree on one content; it is readable by its owner only.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(make_content())
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text()
