"""Sync tokens: one position per stream (DESIGN: "a sync token is the tuple of positions").

``s<events>_<account_data>_<to_device>_<receipts>_<device_lists>_<typing>_<presence>``.
The leading ``s<events>`` is also a valid /messages token (rooms.queries.timeline reads
the first component), so a room's ``prev_batch`` works with /messages as the spec wants.
Every database position is read from matrixhs.streams, which only ever shows positions
whose transactions have committed, in order: a token never skips a late commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

from django.db import connection

from matrixhs.errors import InvalidParam
from matrixhs.models import StreamCounter
from matrixhs.streams import Stream, typing_position

#: A position in a token: ASCII digits only (``str.isdigit`` and ``int`` also take "²" or
#: "٣"), and few enough of them to fit a 64-bit database integer.
_POSITION = re.compile(r"[0-9]{1,18}", re.ASCII)


def parse_position(raw: str) -> int | None:
    """A non-negative position written in a token or a query parameter (None: it is not one)."""
    return int(raw) if _POSITION.fullmatch(raw) else None


@dataclass(frozen=True)
class SyncToken:
    events: int = 0
    account_data: int = 0
    to_device: int = 0
    receipts: int = 0
    device_lists: int = 0
    typing: int = 0
    presence: int = 0

    def encode(self) -> str:
        return "s" + "_".join(str(getattr(self, f.name)) for f in fields(self))

    @classmethod
    def parse(cls, raw: str) -> SyncToken:
        """Raises: InvalidParam: not a token this server issued."""
        parts = raw[1:].split("_") if raw.startswith("s") else []
        positions = [n for n in map(parse_position, parts) if n is not None]
        if len(parts) != len(fields(cls)) or len(positions) != len(parts):
            raise InvalidParam(f"Invalid sync token {raw!r}")
        return cls(*positions)

    def with_(self, **changes: int) -> SyncToken:
        return replace(self, **changes)


_COUNTERS_SQL = f"SELECT name, value FROM {StreamCounter._meta.db_table}"


def current_token() -> SyncToken:
    """The positions every committed change is at now (one query, plus the cache)."""
    with connection.cursor() as cursor:
        cursor.execute(_COUNTERS_SQL)
        values = dict(cursor.fetchall())
    return SyncToken(
        events=values.get(Stream.EVENTS.value, 0),
        account_data=values.get(Stream.ACCOUNT_DATA.value, 0),
        to_device=values.get(Stream.TO_DEVICE.value, 0),
        receipts=values.get(Stream.RECEIPTS.value, 0),
        device_lists=values.get(Stream.DEVICE_LISTS.value, 0),
        typing=typing_position(),
        presence=values.get(Stream.PRESENCE.value, 0),
    )


def min_token(a: SyncToken, b: SyncToken) -> SyncToken:
    """Each stream at the lower of the two positions."""
    return SyncToken(*(min(getattr(a, f.name), getattr(b, f.name)) for f in fields(SyncToken)))
