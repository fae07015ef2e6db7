"""Access-token authentication: who is calling (the requester)."""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework.request import Request

from accounts.queries import Requester, requester_for_token
from matrixhs.errors import MissingToken
from matrixhs.observe import note_user
from matrixhs.ratelimit import client_ip


def access_token_from(request: HttpRequest | Request) -> str | None:
    """The token from ``Authorization: Bearer``, or the deprecated ``access_token`` parameter."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    return request.GET.get("access_token") or None


def authenticate(
    request: HttpRequest | Request, required: bool, allow_locked: bool = False
) -> Requester | None:
    """The requester behind the request's access token.

    Raises:
        MissingToken: no token and ``required``.
        UnknownToken: a token was given but is not valid (even when not required).
    """
    token = access_token_from(request)
    if token is None:
        if required:
            raise MissingToken()
        return None
    requester = requester_for_token(
        token,
        ip=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        allow_locked=allow_locked,
    )
    note_user(requester.user.user_id)
    return requester
