"""Access and refresh tokens: issue, refresh, revoke."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.actions.devices import (
    do_delete_devices,
    do_login_device,
    wake_ended_sessions_on_commit,
)
from accounts.models import AccessToken, Device, RefreshToken, User
from accounts.queries import hash_token
from matrixhs.errors import JsonDict, UnknownToken
from matrixhs.time import now_ms


def _new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def issue_tokens(user: User, device: Device, with_refresh: bool) -> JsonDict:
    """Create an access token (and a refresh token, with an expiring access token).

    Returns:
        ``access_token`` and, with a refresh token, ``refresh_token`` and ``expires_in_ms``.
    """
    return _issue(user, device, with_refresh)[0]


def do_sign_in(
    user: User,
    device_id: str | None,
    display_name: str | None,
    with_refresh: bool,
    ip: str = "",
    user_agent: str = "",
) -> JsonDict:
    """Log a user in on a device (new, or re-used by ID): the body of login and register."""
    with transaction.atomic():
        device = do_login_device(user, device_id, display_name, ip, user_agent)
        body: JsonDict = {"user_id": user.user_id, "device_id": device.device_id}
        return {**body, **issue_tokens(user, device, with_refresh)}


def _issue(user: User, device: Device, with_refresh: bool) -> tuple[JsonDict, RefreshToken | None]:
    now = now_ms()
    access = _new_token("mhat")
    body: JsonDict = {"access_token": access}
    fields: dict[str, Any] = {}
    if with_refresh:
        refresh = _new_token("mhrt")
        fields["refresh_token"] = RefreshToken.objects.create(
            token_hash=hash_token(refresh), user=user, device=device, created_ts=now
        )
        lifetime = settings.MATRIXHS_ACCESS_TOKEN_LIFETIME_MS
        fields["expires_ts"] = now + lifetime
        body.update(refresh_token=refresh, expires_in_ms=lifetime)
    AccessToken.objects.create(
        token_hash=hash_token(access), user=user, device=device, created_ts=now, **fields
    )
    return body, fields.get("refresh_token")


def do_mark_token_used(token: AccessToken) -> None:
    """First use of an access token: the refresh token it replaced is retired now."""
    with transaction.atomic():
        AccessToken.objects.filter(pk=token.pk).update(used=True)
        if token.refresh_token_id is not None:
            _retire_previous(token.refresh_token_id)


def _retire_previous(refresh_token_id: int) -> None:
    """Delete the refresh token that ``refresh_token_id`` replaced, and its access tokens."""
    previous = RefreshToken.objects.filter(next_token_id=refresh_token_id).select_related("user")
    for token in previous:
        wake_ended_sessions_on_commit(token.user)
    previous.delete()


@transaction.atomic
def do_refresh(refresh_token: str) -> JsonDict:
    """Exchange a refresh token for a new access/refresh pair.

    The old refresh token stays usable until the new pair is used, so a client that lost
    the response can try again; using it again replaces the unused pair.

    Raises:
        UnknownToken: unknown or retired refresh token, or deactivated user.
    """
    row = (
        RefreshToken.objects.select_for_update(of=("self",))
        .select_related("user", "device", "next_token")
        .filter(token_hash=hash_token(refresh_token))
        .first()
    )
    if row is None or not row.user.is_active:
        raise UnknownToken("Unknown refresh token")
    _retire_previous(row.pk)
    if row.next_token is not None:
        row.next_token.delete()  # an unused pair from an earlier attempt
    tokens, row.next_token = _issue(row.user, row.device, with_refresh=True)
    row.save(update_fields=["next_token"])
    return tokens


def do_logout(user: User, device_id: str | None, token_id: int) -> None:
    """End one session: its device goes (with its tokens), and the token itself."""
    with transaction.atomic():
        if device_id is not None:
            do_delete_devices(user, [device_id])
        AccessToken.objects.filter(pk=token_id).delete()
        wake_ended_sessions_on_commit(user)


def do_logout_all(user: User) -> None:
    """End every session of ``user``: all devices and all tokens."""
    with transaction.atomic():
        do_delete_devices(user, list(user.devices.values_list("device_id", flat=True)))
        AccessToken.objects.filter(user=user).delete()
        wake_ended_sessions_on_commit(user)
