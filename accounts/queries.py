"""Reads of accounts: token lookup, profiles, devices, account data."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection

from accounts.models import AccessToken, AccountData, Device, User
from matrixhs.errors import Codes, Forbidden, JsonDict, NotFound, UnknownToken, UserLocked
from matrixhs.protocol.ids import InvalidIdentifier, split_id
from matrixhs.sql import columns, instance, rows, width
from matrixhs.time import now_ms

#: Update a device's "last seen" at most this often (a write per request would be waste).
LAST_SEEN_GRANULARITY_MS = 60_000


@dataclass(frozen=True)
class Requester:
    """Who makes a request: the user, the device and the token used."""

    user: User
    device: Device | None
    token_id: int

    @property
    def user_id(self) -> str:
        return self.user.user_id

    @property
    def device_id(self) -> str | None:
        return self.device.device_id if self.device is not None else None

    @property
    def is_guest(self) -> bool:
        return self.user.is_guest


def hash_token(token: str) -> str:
    """Tokens are stored as their SHA-256: they are long random strings, not passwords."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def requester_for_token(
    token: str, ip: str = "", user_agent: str = "", allow_locked: bool = False
) -> Requester:
    """Resolve an access token (one query in the common case).

    Raises:
        UnknownToken: unknown, revoked or of a deactivated user (soft_logout false), or
            expired (soft_logout true: the client may refresh or log in again).
        UserLocked: the account is locked (unless ``allow_locked``: logout).
    """
    row = _token_row(hash_token(token))
    if row is None or not row.user.is_active:
        raise UnknownToken("Unknown access token")
    now = now_ms()
    if row.expires_ts is not None and row.expires_ts <= now:
        raise UnknownToken("Access token has expired", soft_logout=True)
    if row.user.locked and not allow_locked:
        raise UserLocked()
    if not row.used:
        from accounts.actions.tokens import do_mark_token_used

        do_mark_token_used(row)
    device = row.device
    if device is not None and (device.last_seen_ts or 0) < now - LAST_SEEN_GRANULARITY_MS:
        Device.objects.filter(pk=device.pk).update(
            last_seen_ts=now, last_seen_ip=ip[:64], last_seen_user_agent=user_agent[:512]
        )
    return Requester(user=row.user, device=device, token_id=row.pk)


_N_TOKEN, _N_USER = width(AccessToken), width(User)
#: Every authenticated request runs this; written out once, it skips the ORM's query
#: building, which cost more than the query itself.
_TOKEN_SQL = (
    f"SELECT {', '.join(columns(AccessToken, 't') + columns(User, 'u') + columns(Device, 'd'))} "
    f"FROM {AccessToken._meta.db_table} t JOIN {User._meta.db_table} u ON t.user_id = u.id "
    f"LEFT JOIN {Device._meta.db_table} d ON t.device_id = d.id WHERE t.token_hash = %s"
)


def _token_row(token_hash: str) -> AccessToken | None:
    with connection.cursor() as cursor:
        cursor.execute(_TOKEN_SQL, [token_hash])
        values = cursor.fetchone()
    if values is None:
        return None
    token = instance(AccessToken, values[:_N_TOKEN])
    token.user = instance(User, values[_N_TOKEN : _N_TOKEN + _N_USER])
    device_values = values[_N_TOKEN + _N_USER :]
    token.device = instance(Device, device_values) if device_values[0] is not None else None
    return token  # type: ignore[no-any-return]


def is_local_user_id(user_id: str) -> bool:
    try:
        _, server_name = split_id(user_id, "@")
    except InvalidIdentifier:
        return False
    return server_name == settings.MATRIXHS_SERVER_NAME


def get_local_user(user_id: str) -> User | None:
    """The local user with this ID, or None (deactivated users included)."""
    if not is_local_user_id(user_id):
        return None
    return User.objects.filter(user_id=user_id).first()


def access_own_user(requester: Requester, user_id: str) -> None:
    """Endpoints under /user/{userId}/ act on the caller's own data only.

    Raises:
        Forbidden: ``user_id`` is someone else.
    """
    if user_id != requester.user_id:
        raise Forbidden("Cannot act on behalf of another user", Codes.FORBIDDEN)


def format_profile(user: User) -> JsonDict:
    profile: JsonDict = dict(user.profile_fields)
    if user.displayname is not None:
        profile["displayname"] = user.displayname
    if user.avatar_url is not None:
        profile["avatar_url"] = user.avatar_url
    return profile


def get_profile(user_id: str) -> JsonDict:
    """The profile of a local user.

    Raises:
        NotFound: no such (active) user here.
    """
    user = get_local_user(user_id)
    if user is None or not user.is_active:
        raise NotFound("Profile was not found")
    return format_profile(user)


def format_device(device: Device) -> JsonDict:
    body: JsonDict = {"device_id": device.device_id}
    if device.display_name is not None:
        body["display_name"] = device.display_name
    if device.last_seen_ts is not None:
        body["last_seen_ts"] = device.last_seen_ts
    if device.last_seen_ip is not None:
        body["last_seen_ip"] = device.last_seen_ip
    return body


def list_devices(user: User) -> list[JsonDict]:
    """The user's devices but the dehydrated one (MSC3814): nobody signs in on it, and
    clients that know it find it through its keys. It is still reachable by its ID."""
    devices = user.devices.filter(dehydrated__isnull=True).order_by("created_ts", "pk")
    return [format_device(d) for d in devices]


def get_device(user: User, device_id: str) -> Device:
    """Raises: NotFound: the user has no such device."""
    device = user.devices.filter(device_id=device_id).first()
    if device is None:
        raise NotFound("Device not found")
    return device


def get_account_data(user: User, data_type: str, room_id: str = "") -> JsonDict:
    """Raises: NotFound: nothing stored under this type."""
    row = AccountData.objects.filter(user=user, room_id=room_id, type=data_type).first()
    if row is None:
        raise NotFound("Account data not found")
    return dict(row.content)


_IGNORED_SQL = (
    f"SELECT a.content FROM {AccountData._meta.db_table} a "
    f"JOIN {User._meta.db_table} u ON a.user_id = u.id "
    "WHERE u.{by} = %s AND a.room_id = '' AND a.type = 'm.ignored_user_list'"
)
_IGNORED_BY_ID = _IGNORED_SQL.format(by="user_id")
_IGNORED_BY_PK = _IGNORED_SQL.format(by="id")


def ignored_users(user: User | str) -> frozenset[str]:
    """The users ``user`` (a user or a user ID) ignores (spec "Ignoring Users": the keys of
    ``ignored_users`` in the m.ignored_user_list account data). One query, written out:
    every /sync and every page of events asks."""
    if isinstance(user, str):
        found = rows(_IGNORED_BY_ID, [user])
    else:
        found = rows(_IGNORED_BY_PK, [user.pk])
    if not found:
        return frozenset()
    content = AccountData._meta.get_field("content").from_db_value(found[0][0], None, connection)
    return ignored_in(content)


def ignored_in(content: Any) -> frozenset[str]:
    """The user IDs an m.ignored_user_list content names (none if it is malformed)."""
    ignored = content.get("ignored_users") if isinstance(content, dict) else None
    return frozenset(ignored) if isinstance(ignored, dict) else frozenset()


def room_tags(user: User, room_id: str) -> JsonDict:
    """The user's tags of a room ({tag: {"order": ...}}), from its m.tag account data."""
    content = (
        AccountData.objects.filter(user=user, room_id=room_id, type="m.tag")
        .values_list("content", flat=True)
        .first()
    )
    tags = content.get("tags") if isinstance(content, dict) else None
    return tags if isinstance(tags, dict) else {}


def room_account_data(user: User, room_id: str) -> list[JsonDict]:
    """All the user's account data for one room, as events."""
    rows = AccountData.objects.filter(user=user, room_id=room_id).values_list("type", "content")
    return [{"type": data_type, "content": content} for data_type, content in rows]
