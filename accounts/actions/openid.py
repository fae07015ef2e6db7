"""OpenID tokens (spec "OpenID"): a user proves who they are to a third party, which
asks us with the token (federation API, GET /openid/userinfo)."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings

from accounts.models import OpenIdToken, User
from matrixhs.errors import JsonDict
from matrixhs.time import now_ms

LIFETIME_MS = 3600 * 1000


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def do_request_openid_token(user: User) -> JsonDict:
    """A new token for ``user``, valid LIFETIME_MS (expired ones are dropped meanwhile)."""
    now = now_ms()
    OpenIdToken.objects.filter(expires_ts__lt=now).delete()
    token = secrets.token_urlsafe(32)
    OpenIdToken.objects.create(token_hash=_hash(token), user=user, expires_ts=now + LIFETIME_MS)
    return {
        "access_token": token,
        "token_type": "Bearer",
        "matrix_server_name": settings.MATRIXHS_SERVER_NAME,
        "expires_in": LIFETIME_MS // 1000,
    }


def openid_user(token: str) -> str | None:
    """The user ID a valid, unexpired token was issued to."""
    row = (
        OpenIdToken.objects.filter(
            token_hash=_hash(token), expires_ts__gte=now_ms(), user__is_active=True
        )
        .select_related("user")
        .first()
    )
    return row.user.user_id if row is not None else None
