"""Writes of the sync app: typing notifications (short-lived shared state, never a row).

Each room's typing users live in one cache entry (Redis in the scaled mode, so every
process sees them) with the typing-stream position of its last change. An entry whose
time is up is removed by the first reader that notices, which takes a new position and
wakes the room: /sync waiters schedule a re-read at the earliest expiry they saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.core.cache import cache

from matrixhs.notifier import notify_users, run_later
from matrixhs.streams import bump_typing_position

#: Longest typing timeout honoured (ms); clients refresh typing while it lasts.
MAX_TYPING_TIMEOUT_MS = 120_000
DEFAULT_TYPING_TIMEOUT_MS = 30_000
_ENTRY_TTL_S = MAX_TYPING_TIMEOUT_MS // 1000 + 60


def _room_key(room_id: str) -> str:
    return f"typing:room:{room_id}"


def _now() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class RoomTyping:
    users: list[str]
    position: int
    next_expiry_ms: int | None


def do_set_typing(
    room_id: str, user_id: str, typing: bool, timeout_ms: int | None, notify: list[str]
) -> None:
    """Start or stop ``user_id`` typing in a room; ``notify`` are the room's local members."""
    now = _now()
    key = _room_key(room_id)
    entry = cache.get(key) or {"users": {}, "pos": 0}
    users = {u: until for u, until in entry["users"].items() if until > now}
    was_typing = user_id in users
    if typing:
        timeout = min(timeout_ms or DEFAULT_TYPING_TIMEOUT_MS, MAX_TYPING_TIMEOUT_MS)
        users[user_id] = now + timeout
    else:
        users.pop(user_id, None)
    changed = typing != was_typing or len(users) != len(entry["users"])
    position = bump_typing_position() if changed else entry["pos"]
    cache.set(key, {"users": users, "pos": position}, timeout=_ENTRY_TTL_S)
    if changed:
        notify_users(notify)
    if typing:
        # When the time is up, drop the entry and tell the room, even if nobody reads it.
        run_later(timeout / 1000 + 0.05, _expire, room_id, notify)


def _expire(room_id: str, members: list[str]) -> None:
    typing_in_rooms([room_id], lambda: {room_id: members})


def typing_in_rooms(
    room_ids: Iterable[str],
    members: Callable[[], dict[str, list[str]]] | None = None,
    now_ms: int | None = None,
) -> dict[str, RoomTyping]:
    """The typing users of each room (one cache round trip). Expired entries found here
    are removed, with a new position and a wake-up of ``members()[room_id]``."""
    now = now_ms if now_ms is not None else _now()
    keys = {_room_key(room_id): room_id for room_id in room_ids}
    found = cache.get_many(list(keys))
    result: dict[str, RoomTyping] = {}
    for key, entry in found.items():
        room_id = keys[key]
        users = {u: until for u, until in entry["users"].items() if until > now}
        position = entry["pos"]
        if len(users) != len(entry["users"]):
            position = bump_typing_position()
            cache.set(key, {"users": users, "pos": position}, timeout=_ENTRY_TTL_S)
            notify_users((members() if members else {}).get(room_id, []))
        result[room_id] = RoomTyping(
            users=sorted(users),
            position=position,
            next_expiry_ms=min(users.values()) if users else None,
        )
    return result


def typing_users(room_id: str, now_ms: int | None = None) -> list[str]:
    """The users typing in a room now."""
    typing = typing_in_rooms([room_id], now_ms=now_ms).get(room_id)
    return typing.users if typing is not None else []
