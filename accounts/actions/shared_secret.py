"""Shared-secret registration (``/_synapse/admin/v1/register``), the provisioning API
that Synapse defines and tools such as ``register_new_matrix_user`` and Complement use.

A client first fetches a nonce, then posts the new account with
``mac = HMAC-SHA1(secret, nonce NUL username NUL password NUL ("admin"|"notadmin")
[NUL user_type])`` in hex. A nonce is good for one attempt within a minute. Nonces
live in the cache (Redis when scaled), so any process may answer either request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings
from django.core.cache import cache

from matrixhs.errors import Codes, Forbidden, InvalidParam, MatrixError

NONCE_LIFETIME_S = 60
_CACHE_PREFIX = "shared-secret-nonce:"


def _secret() -> bytes:
    """The configured secret.

    Raises:
        MatrixError: 400 M_UNKNOWN when shared-secret registration is not configured.
    """
    secret: str = settings.MATRIXHS_REGISTRATION_SHARED_SECRET
    if not secret:
        raise MatrixError(400, Codes.UNKNOWN, "Shared secret registration is not enabled")
    return secret.encode("utf-8")


def do_create_nonce() -> str:
    """A fresh single-use nonce.

    Raises:
        MatrixError: shared-secret registration is not configured.
    """
    _secret()
    nonce = secrets.token_hex(32)
    cache.set(_CACHE_PREFIX + nonce, True, timeout=NONCE_LIFETIME_S)
    return nonce


def registration_mac(
    secret: bytes, nonce: str, username: str, password: str, admin: bool, user_type: str | None
) -> str:
    """The hex HMAC-SHA1 a client sends for these fields."""
    parts = [nonce, username, password, "admin" if admin else "notadmin"]
    if user_type is not None:
        parts.append(user_type)
    message = b"\x00".join(part.encode("utf-8") for part in parts)
    return hmac.new(secret, message, hashlib.sha1).hexdigest()


def check_registration_mac(
    nonce: str, username: str, password: str, admin: bool, user_type: str | None, mac: str
) -> None:
    """Consume ``nonce`` and check ``mac`` against the secret.

    The nonce is used up even when the MAC is wrong, so a nonce allows one guess.

    Raises:
        MatrixError: not configured (400 M_UNKNOWN).
        InvalidParam: the nonce is unknown, used or expired.
        Forbidden: the MAC is wrong.
    """
    secret = _secret()
    if not cache.delete(_CACHE_PREFIX + nonce):
        raise InvalidParam("Unrecognised nonce")
    if "\x00" in username or "\x00" in password:
        raise InvalidParam("Username and password may not contain NUL")
    expected = registration_mac(secret, nonce, username, password, admin, user_type)
    if not hmac.compare_digest(expected, mac.lower()):
        raise Forbidden("HMAC incorrect")
