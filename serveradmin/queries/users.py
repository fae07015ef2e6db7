"""Reads of users for the admin API, in Synapse's shapes."""

from __future__ import annotations

from django.db.models import F, Max, Q, QuerySet

from accounts.models import Device, User
from matrixhs.errors import InvalidParam, JsonDict

#: Synapse's ``order_by`` values and the columns they sort by here. Those Synapse knows
#: but this server has no data for (user_type, shadow_banned) sort by user ID.
USER_ORDER = {
    "name": "user_id",
    "is_guest": "is_guest",
    "admin": "is_admin",
    "user_type": "user_id",
    "deactivated": "is_active",
    "shadow_banned": "user_id",
    "displayname": "displayname",
    "avatar_url": "avatar_url",
    "creation_ts": "created_ts",
    "last_seen_ts": "last_seen",
    "locked": "locked",
    "suspended": "suspended",
}


def format_user(user: User, last_seen_ts: int | None = None) -> JsonDict:
    """A user as Synapse's admin API lists it."""
    return {
        "name": user.user_id,
        "user_type": None,
        "is_guest": user.is_guest,
        "admin": user.is_admin,
        "deactivated": not user.is_active,
        "erased": user.erased,
        "shadow_banned": False,
        "displayname": user.displayname,
        "avatar_url": user.avatar_url,
        "creation_ts": user.created_ts,
        "approved": True,
        "locked": user.locked,
        "suspended": user.suspended,
        "last_seen_ts": last_seen_ts,
    }


def user_details(user: User) -> JsonDict:
    """GET /_synapse/admin/v2/users/{userId}."""
    last_seen = user.devices.aggregate(last=Max("last_seen_ts"))["last"]
    return {
        **format_user(user, last_seen),
        "threepids": [],
        "external_ids": [],
        "appservice_id": None,
        "consent_server_notice_sent": None,
        "consent_version": None,
        "consent_ts": None,
    }


def filter_users(
    *,
    user_id: str | None,
    name: str | None,
    guests: bool,
    deactivated: bool,
    admins: bool | None,
    locked: bool,
) -> QuerySet[User]:
    users = User.objects.all()
    if user_id:
        users = users.filter(user_id__icontains=user_id)
    if name:
        users = users.filter(Q(user_id__icontains=name) | Q(displayname__icontains=name))
    if not guests:
        users = users.filter(is_guest=False)
    if not deactivated:
        users = users.filter(is_active=True)
    if admins is not None:
        users = users.filter(is_admin=admins)
    if not locked:
        users = users.filter(locked=False)
    return users


def list_users(
    users: QuerySet[User], order_by: str, backwards: bool, start: int, limit: int
) -> tuple[list[JsonDict], int]:
    """One page of ``users`` (two queries) and how many there are in all.

    Raises:
        InvalidParam: an unknown ``order_by``.
    """
    column = USER_ORDER.get(order_by)
    if column is None:
        raise InvalidParam(f"Unknown order_by {order_by!r}")
    total = users.count()
    page = users.annotate(last_seen=Max("devices__last_seen_ts"))
    key = F(column).desc(nulls_last=True) if backwards else F(column).asc(nulls_first=True)
    if column == "is_active":  # "deactivated" sorts the other way round
        key = F(column).asc() if backwards else F(column).desc()
    rows = page.order_by(key, "user_id" if not backwards else "-user_id")[start : start + limit]
    return [format_user(user, user.last_seen) for user in rows], total


def format_device(device: Device, user_id: str) -> JsonDict:
    return {
        "device_id": device.device_id,
        "display_name": device.display_name,
        "last_seen_ip": device.last_seen_ip,
        "last_seen_ts": device.last_seen_ts,
        "last_seen_user_agent": device.last_seen_user_agent,
        "user_id": user_id,
    }


def whois(user: User, key_by_device: bool) -> JsonDict:
    """Who a user is connected as: each device's last connection. ``key_by_device``:
    the spec's shape (a key per device); else Synapse's (every session under "")."""
    devices = user.devices.order_by("created_ts", "pk")
    sessions: dict[str, list[JsonDict]] = {}
    for device in devices:
        connections = []
        if device.last_seen_ts is not None:
            connections.append(
                {
                    "ip": device.last_seen_ip or "",
                    "last_seen": device.last_seen_ts,
                    "user_agent": device.last_seen_user_agent or "",
                }
            )
        key = device.device_id if key_by_device else ""
        sessions.setdefault(key, []).append({"connections": connections})
    return {
        "user_id": user.user_id,
        "devices": {key: {"sessions": value} for key, value in sessions.items()},
    }
