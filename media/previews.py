"""URL previews (written below)."""

from __future__ import annotations

from typing import Any

from accounts.models import User
from matrixhs.errors import Unrecognized


def preview_url(user: User, url: str) -> dict[str, Any]:
    raise Unrecognized()
