"""Stream positions that readers can trust.

Every change a client must see (account data, room events, to-device messages, ...) gets
a position in its stream, and a sync token is a tuple of positions. With several writer
processes, a position must never become visible before a lower one: a reader that saw
position 7 would never go back for a 6 that committed later. So a position is taken by
incrementing a counter row *as the last statement of the writing transaction*: the row
stays locked until commit, the next writer waits on it, and positions commit in order.
(SQLite has a single writer anyway: transactions there are BEGIN IMMEDIATE.)

Typing is the exception: it is short-lived shared state, never a row, so its position is
a counter in the cache (Redis in the scaled mode, shared by every process).
"""

from __future__ import annotations

from enum import StrEnum

from django.core.cache import cache
from django.db import connection, transaction

from matrixhs.models import StreamCounter


class Stream(StrEnum):
    ACCOUNT_DATA = "account_data"
    EVENTS = "events"
    TO_DEVICE = "to_device"
    RECEIPTS = "receipts"
    DEVICE_LISTS = "device_lists"
    PRESENCE = "presence"
    #: History fetched from other servers: stored at minus this position, below every
    #: live event, so that incremental syncs never see it.
    BACKFILL = "backfill"


_TABLE = StreamCounter._meta.db_table


def next_position(stream: Stream) -> int:
    """Take the next position of ``stream``; call it last in the writing transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("stream positions are taken inside the writing transaction")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_TABLE} SET value = value + 1 WHERE name = %s RETURNING value", [stream.value]
        )
        row = cursor.fetchone()
        if row is None:
            cursor.execute(
                f"INSERT INTO {_TABLE} (name, value) VALUES (%s, 0) ON CONFLICT (name) DO NOTHING",
                [stream.value],
            )
            cursor.execute(
                f"UPDATE {_TABLE} SET value = value + 1 WHERE name = %s RETURNING value",
                [stream.value],
            )
            row = cursor.fetchone()
    return int(row[0])


def current_position(stream: Stream) -> int:
    """The highest committed position of ``stream`` (0 when nothing was written)."""
    with connection.cursor() as cursor:  # read on every send and sync: no ORM on the way
        cursor.execute(f"SELECT value FROM {_TABLE} WHERE name = %s", [stream.value])
        row = cursor.fetchone()
    return int(row[0]) if row is not None else 0


TYPING_STREAM_KEY = "typing:stream"

#: The highest typing position this process has seen. The counter lives in the cache,
#: which may lose it (a Redis restart) or be stood in for by process memory (a Redis
#: outage, matrixhs.cache); positions handed out here never go below this floor, so a
#: client's typing token never runs ahead of the stream.
_typing_floor = 0


def typing_position() -> int:
    """The typing stream position (a counter in the cache, shared across processes)."""
    global _typing_floor
    position = int(cache.get(TYPING_STREAM_KEY) or 0)
    if position < _typing_floor:
        return _typing_floor
    _typing_floor = position
    return position


def bump_typing_position() -> int:
    """Take the next typing position."""
    global _typing_floor
    cache.add(TYPING_STREAM_KEY, _typing_floor, timeout=None)
    try:
        position = int(cache.incr(TYPING_STREAM_KEY))
    except ValueError:  # the counter vanished between add and incr: start it again
        position = _typing_floor + 1
        cache.set(TYPING_STREAM_KEY, position, timeout=None)
    if position <= _typing_floor:  # the counter restarted below what was handed out
        position = _typing_floor + 1
        cache.set(TYPING_STREAM_KEY, position, timeout=None)
    _typing_floor = position
    return position
