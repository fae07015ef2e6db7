"""Login tokens (spec "Token-based" login, POST /login/get_token): a signed-in user makes
a token that signs in one more client as them, once, within a short lifetime."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings

from accounts.models import LoginToken, User
from matrixhs.errors import Codes, Forbidden, JsonDict
from matrixhs.time import now_ms


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def do_issue_login_token(user: User) -> JsonDict:
    """A new token for ``user`` (expired tokens are dropped meanwhile): the body of
    POST /login/get_token."""
    now = now_ms()
    LoginToken.objects.filter(expires_ts__lte=now).delete()
    token = secrets.token_urlsafe(32)
    lifetime = settings.MATRIXHS_LOGIN_TOKEN_LIFETIME_MS
    LoginToken.objects.create(token_hash=_hash(token), user=user, expires_ts=now + lifetime)
    return {"login_token": token, "expires_in_ms": lifetime}


def do_use_login_token(token: str) -> User:
    """The user a valid token signs in; the token is spent, whether it was still valid or
    not (one DELETE decides: two logins racing with one token cannot both win).

    Raises:
        Forbidden: unknown, used or expired token, or its user is deactivated.
    """
    row = LoginToken.objects.filter(token_hash=_hash(token)).select_related("user").first()
    if row is None or not LoginToken.objects.filter(pk=row.pk).delete()[0]:
        raise Forbidden("Invalid login token")
    if row.expires_ts <= now_ms():
        raise Forbidden("Login token has expired")
    if not row.user.is_active:
        raise Forbidden("This account has been deactivated", Codes.USER_DEACTIVATED)
    user: User = row.user
    return user
