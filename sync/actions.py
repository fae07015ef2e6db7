"""Writes of the sync app: typing notifications (short-lived shared state, never a row)."""

from __future__ import annotations

import time

from django.core.cache import cache

from sync.notifier import notify_users

#: Longest typing timeout honoured (ms); clients refresh typing while it lasts.
MAX_TYPING_TIMEOUT_MS = 120_000
DEFAULT_TYPING_TIMEOUT_MS = 30_000
TYPING_STREAM_KEY = "typing:stream"


def _room_key(room_id: str) -> str:
    return f"typing:room:{room_id}"


def typing_users(room_id: str, now_ms: int | None = None) -> list[str]:
    """The users typing in a room now."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    typing: dict[str, int] = cache.get(_room_key(room_id)) or {}
    return sorted(user for user, until in typing.items() if until > now)


def typing_position() -> int:
    """The typing stream position (a counter in the cache, shared across processes)."""
    return int(cache.get(TYPING_STREAM_KEY) or 0)


def _bump_position() -> int:
    cache.add(TYPING_STREAM_KEY, 0, timeout=None)
    try:
        return int(cache.incr(TYPING_STREAM_KEY))
    except ValueError:
        cache.set(TYPING_STREAM_KEY, 1, timeout=None)
        return 1


def do_set_typing(room_id: str, user_id: str, typing: bool, timeout_ms: int | None,
                  notify: list[str]) -> None:
    """Start or stop ``user_id`` typing in a room; ``notify`` are the room's local members.

    The entry expires on its own after the timeout; the room's key lives a little longer.
    """
    now = int(time.time() * 1000)
    key = _room_key(room_id)
    current: dict[str, int] = {
        user: until for user, until in (cache.get(key) or {}).items() if until > now
    }
    was_typing = user_id in current
    if typing:
        timeout = min(timeout_ms or DEFAULT_TYPING_TIMEOUT_MS, MAX_TYPING_TIMEOUT_MS)
        current[user_id] = now + timeout
    else:
        current.pop(user_id, None)
    cache.set(key, current, timeout=MAX_TYPING_TIMEOUT_MS // 1000 + 60)
    if typing != was_typing:
        _bump_position()
        notify_users(notify)
