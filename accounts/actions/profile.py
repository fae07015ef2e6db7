"""Profiles: display name, avatar and extended profile fields (spec v1.16+)."""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings

from accounts.models import User
from matrixhs.errors import BadJson, Codes, InvalidParam, MatrixError

#: The spec's grammar of profile keys: the two classic fields, m.tz, or namespaced keys.
PROFILE_KEY_RE = re.compile(r"^(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$")
#: Spec: the whole profile, as JSON, must stay under 64 KiB; keys at most 255 bytes.
MAX_PROFILE_BYTES = 65536
MAX_KEY_BYTES = 255


def check_profile_key(key: str) -> None:
    """Raises: MatrixError: M_KEY_TOO_LARGE or M_INVALID_PARAM for a key outside the grammar."""
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise MatrixError(
            400, Codes.KEY_TOO_LARGE, f"Profile key is longer than {MAX_KEY_BYTES} bytes"
        )
    if not PROFILE_KEY_RE.match(key):
        raise InvalidParam("Invalid profile key.")


def check_profile_field(user: User, key: str, value: Any) -> None:
    """Check a new profile field value.

    Raises:
        BadJson: displayname/avatar_url not a string or too long.
        InvalidParam: an avatar_url that is not an mxc:// URI.
        MatrixError: M_PROFILE_TOO_LARGE past the 64 KiB profile limit.
    """
    check_profile_key(key)
    if key in ("displayname", "avatar_url"):
        if not isinstance(value, str):
            raise BadJson(f"{key} must be a string")
        limit = (
            settings.MATRIXHS_MAX_DISPLAYNAME_LENGTH
            if key == "displayname"
            else settings.MATRIXHS_MAX_AVATAR_URL_LENGTH
        )
        if len(value) > limit:
            raise BadJson(f"{key} is too long (max {limit})")
        if key == "avatar_url" and value and not value.startswith("mxc://"):
            raise InvalidParam("avatar_url must be an mxc:// URI")
    profile = {
        **user.profile_fields,
        "displayname": user.displayname,
        "avatar_url": user.avatar_url,
        key: value,
    }
    size = len(json.dumps(profile, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_PROFILE_BYTES:
        raise MatrixError(400, Codes.PROFILE_TOO_LARGE, "The profile would exceed 64 KiB")


def do_set_profile_field(user: User, key: str, value: Any) -> None:
    """Set one field (the caller ran :func:`check_profile_field`)."""
    if key in ("displayname", "avatar_url"):
        setattr(user, key, value)
        user.save(update_fields=[key])
    else:
        user.profile_fields = {**user.profile_fields, key: value}
        user.save(update_fields=["profile_fields"])


def do_delete_profile_field(user: User, key: str) -> None:
    check_profile_key(key)
    if key in ("displayname", "avatar_url"):
        setattr(user, key, None)
        user.save(update_fields=[key])
    elif key in user.profile_fields:
        user.profile_fields = {k: v for k, v in user.profile_fields.items() if k != key}
        user.save(update_fields=["profile_fields"])
