"""Events in the client format (spec "ClientEvent"), from stored PDUs.

Redacted events are served pruned with ``unsigned.redacted_because``, and so is every
other event content served with them (``prev_content``, stripped state: all read through
rooms.events.load_pdus, which prunes); state events carry ``unsigned.prev_content`` and
``replaces_state``; the sender's own device sees its
``transaction_id``; ``unsigned.membership`` is the reader's membership at each event;
``unsigned.m.relations`` bundles edits and thread summaries. Every
lookup is batched: formatting N events costs a fixed number of queries.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from matrixhs import sql
from matrixhs.errors import JsonDict
from matrixhs.protocol.events import EventTypes
from matrixhs.time import now_ms
from rooms.events import load_pdus, stored_pdu
from rooms.models import ClientTransaction, Event, Room
from rooms.queries.relations import bundled_aggregations


@dataclass(slots=True)
class EventRow:
    """An event read only to be formatted (or filtered): the columns the formatting
    reads, and the room, without a model instance for each (for pages of hundreds of
    state events, building instances cost more than the rest of the request)."""

    event_id: str
    room_id: int
    type: str
    state_key: str | None
    sender: str
    stream_ordering: int | None
    origin_server_ts: int
    json: str
    redacted_by: str | None
    replaces_state: str | None
    membership: str | None
    rel_type: str | None
    relates_to: str | None
    room: Room


_ROW_COLUMNS = [f.name for f in EventRow.__dataclass_fields__.values()][:-1]


def event_rows(events: QuerySet[Event], room: Room) -> list[EventRow]:
    """``events`` (all of ``room``) as :class:`EventRow`, for :func:`format_events`."""
    return [EventRow(*values, room=room) for values in events.values_list(*_ROW_COLUMNS)]


@dataclass(frozen=True)
class Viewer:
    """Who events are formatted for (transaction IDs and thread participation differ)."""

    user_id: str
    device_id: str | None = None
    #: The users the viewer ignores, when the caller has read them already (None: they are
    #: read when needed, see rooms.queries.visibility.ignored_by).
    ignored: frozenset[str] | None = None


def format_events(
    events: Sequence[Event] | Sequence[EventRow], viewer: Viewer, bundle: bool = True
) -> list[JsonDict]:
    """Client-format ``events`` (Event rows with ``room`` selected, or EventRows) for
    ``viewer``."""
    if not events:
        return []
    related = load_pdus(
        [e.redacted_by for e in events if e.redacted_by]
        + [e.replaces_state for e in events if e.replaces_state]
    )
    txn_ids = _transaction_ids(events, viewer)
    memberships = _viewer_memberships(events, viewer)
    aggregations = bundled_aggregations(events, viewer) if bundle else {}
    now = now_ms()
    out = []
    for event in events:
        body = _client_event(event, related, now)
        if event.event_id in memberships:
            body["unsigned"]["membership"] = memberships[event.event_id]
        if event.event_id in txn_ids:
            body["unsigned"]["transaction_id"] = txn_ids[event.event_id]
        if event.event_id in aggregations and event.redacted_by is None:
            body["unsigned"]["m.relations"] = aggregations[event.event_id]
        out.append(body)
    return out


def format_event(event: Event, viewer: Viewer) -> JsonDict:
    return format_events([event], viewer)[0]


def _transaction_ids(events: Sequence[Event], viewer: Viewer) -> dict[str, str]:
    if viewer.device_id is None:
        return {}
    own = [e.event_id for e in events if e.sender == viewer.user_id]
    if not own:
        return {}
    query = (
        f"SELECT event_id, txn_id FROM {ClientTransaction._meta.db_table} "
        f"WHERE user_id = %s AND device_id = %s AND event_id IN ({', '.join(['%s'] * len(own))})"
    )
    return dict(sql.rows(query, [viewer.user_id, viewer.device_id, *own]))


def _viewer_memberships(events: Sequence[Event], viewer: Viewer) -> dict[str, str]:
    """``unsigned.membership``: the viewer's membership in the room at each event (after
    it, so their own join reads "join"; "leave" when they had none). Events are placed
    by the positions this server gave them; outliers get none."""
    placed = [e for e in events if e.stream_ordering is not None]
    if not placed:
        return {}
    # Neither bounded nor ordered by position in SQL (done here, on a few rows): either
    # makes SQLite walk every event of the rooms by (room, stream_ordering) instead of
    # the viewer's few member events by (room, type, state_key).
    room_pks = sorted({e.room_id for e in placed})
    rows = sql.rows(
        f"SELECT room_id, stream_ordering, membership FROM {Event._meta.db_table} "
        f"WHERE room_id IN ({', '.join(['%s'] * len(room_pks))}) AND type = %s "
        "AND state_key = %s AND rejected_reason IS NULL AND soft_failed = %s",
        [*room_pks, EventTypes.MEMBER, viewer.user_id, False],
    )
    placed_rows = sorted((r for r in rows if r[1] is not None), key=lambda r: r[1])
    history: dict[int, tuple[list[int], list[str]]] = defaultdict(lambda: ([], []))
    for room_pk, position, membership in placed_rows:
        history[room_pk][0].append(position)
        history[room_pk][1].append(membership or "leave")
    found = {}
    for event in placed:
        positions, values = history.get(event.room_id, ([], []))
        index = bisect_right(positions, event.stream_ordering or 0)
        found[event.event_id] = values[index - 1] if index else "leave"
    return found


def _client_event(event: Event, related: dict[str, JsonDict], now: int) -> JsonDict:
    pdu = stored_pdu(event)
    unsigned: dict[str, Any] = {"age": max(0, now - event.origin_server_ts)}
    if event.redacted_by is not None:
        because = related.get(event.redacted_by)
        if because is not None:
            unsigned["redacted_because"] = client_format_pdu(
                because, event.redacted_by, event.room.room_id, now
            )
    body = client_format_pdu(pdu, event.event_id, event.room.room_id, now, unsigned)
    if event.state_key is not None and event.replaces_state:
        unsigned["replaces_state"] = event.replaces_state
        previous = related.get(event.replaces_state)
        if previous is not None:
            unsigned["prev_content"] = previous.get("content", {})
            unsigned["prev_sender"] = previous.get("sender")
    return body


def client_format_pdu(
    pdu: JsonDict, event_id: str, room_id: str, now: int, unsigned: dict[str, Any] | None = None
) -> JsonDict:
    """The client-visible fields of a PDU."""
    body: JsonDict = {
        "content": pdu.get("content", {}),
        "event_id": event_id,
        "origin_server_ts": pdu.get("origin_server_ts", 0),
        "room_id": room_id,
        "sender": pdu.get("sender", ""),
        "type": pdu.get("type", ""),
        "unsigned": unsigned
        if unsigned is not None
        else {"age": max(0, now - int(pdu.get("origin_server_ts", now)))},
    }
    if "state_key" in pdu:
        body["state_key"] = pdu["state_key"]
    if pdu.get("type") == EventTypes.REDACTION and "state_key" not in pdu:
        # Top level too, for clients of older rooms. A state event of this type redacts
        # nothing, and must not look to clients as if it did.
        redacts = pdu.get("redacts", body["content"].get("redacts"))
        if isinstance(redacts, str):
            body["redacts"] = redacts
    return body


def stripped_state_events(event_ids: Iterable[str]) -> dict[str, JsonDict]:
    """The stripped form (invite/knock room state) of events by event ID: type, state_key,
    sender and content (redacted content for redacted events), in one batch."""
    return {
        event_id: {
            "type": pdu["type"],
            "state_key": pdu.get("state_key", ""),
            "sender": pdu["sender"],
            "content": pdu.get("content", {}),
        }
        for event_id, pdu in load_pdus(event_ids).items()
    }
