"""Registration tokens (MATRIXHS_REGISTRATION=token): create and revoke."""

from __future__ import annotations

import re
import secrets

from django.db import IntegrityError, transaction

from accounts.models import RegistrationToken
from matrixhs.errors import InvalidParam
from matrixhs.time import now_ms

#: The spec's token grammar: 1 to 64 characters of [A-Za-z0-9._~-].
TOKEN_RE = re.compile(r"^[A-Za-z0-9._~\-]{1,64}$")


def do_create_registration_token(
    token: str | None = None, uses_allowed: int | None = None, expiry_ts: int | None = None
) -> RegistrationToken:
    """Create a token (random when ``token`` is None).

    Raises:
        InvalidParam: bad grammar, a token that exists, negative uses or a past expiry.
    """
    token = token or secrets.token_urlsafe(12)
    if not TOKEN_RE.match(token):
        raise InvalidParam("Tokens are 1-64 characters of A-Z, a-z, 0-9, '.', '_', '~', '-'")
    if uses_allowed is not None and uses_allowed < 0:
        raise InvalidParam("uses_allowed must not be negative")
    if expiry_ts is not None and expiry_ts <= now_ms():
        raise InvalidParam("expiry_ts is in the past")
    try:
        with transaction.atomic():
            return RegistrationToken.objects.create(
                token=token, uses_allowed=uses_allowed, expiry_ts=expiry_ts, created_ts=now_ms()
            )
    except IntegrityError as exc:
        raise InvalidParam(f"Token {token} already exists") from exc


def do_revoke_registration_token(token: str) -> bool:
    """Make a token unusable from now on (it expires now); True if it existed."""
    return bool(RegistrationToken.objects.filter(token=token).update(expiry_ts=now_ms()))


def do_update_registration_token(
    token: RegistrationToken, changes: dict[str, int | None]
) -> RegistrationToken:
    """Change ``uses_allowed`` and/or ``expiry_ts`` (None: unlimited, never expires).

    Raises:
        InvalidParam: negative uses, or an expiry in the past.
    """
    uses = changes.get("uses_allowed")
    if "uses_allowed" in changes and uses is not None and uses < 0:
        raise InvalidParam("uses_allowed must not be negative")
    expiry = changes.get("expiry_ts")
    if expiry is not None and expiry <= now_ms():
        raise InvalidParam("expiry_time is in the past")
    fields = [name for name in ("uses_allowed", "expiry_ts") if name in changes]
    for name in fields:
        setattr(token, name, changes[name])
    token.save(update_fields=fields)
    return token


def do_delete_registration_token(token: str) -> bool:
    """Delete a token for good; True if it existed. Accounts made with it stay."""
    deleted, _ = RegistrationToken.objects.filter(token=token).delete()
    return bool(deleted)
