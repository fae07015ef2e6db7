"""Reads of content reports for the admin API (GET /_synapse/admin/v1/event_reports)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from matrixhs.errors import JsonDict
from matrixhs.protocol.events import EventTypes
from rooms.events import load_pdus
from rooms.models import CurrentStateEvent, Event, EventReport


def format_reports(reports: Sequence[EventReport], with_event: bool = False) -> list[JsonDict]:
    """Synapse's report entries: with the room's name and alias and the event's sender
    (three queries for the whole page)."""
    room_ids = {r.room_id for r in reports}
    state = CurrentStateEvent.objects.filter(
        room__room_id__in=room_ids,
        state_key="",
        type__in=(EventTypes.NAME, EventTypes.CANONICAL_ALIAS),
    ).values_list("room__room_id", "type", "event_id")
    state_ids = {(room_id, kind): event_id for room_id, kind, event_id in state}
    events = {
        e.event_id: e
        for e in Event.objects.filter(event_id__in={r.event_id for r in reports if r.event_id})
    }
    pdus = load_pdus(state_ids.values())

    def state_value(room_id: str, kind: str, field: str) -> str | None:
        pdu = pdus.get(state_ids.get((room_id, kind), ""), {})
        value = pdu.get("content", {}).get(field)
        return value if isinstance(value, str) else None

    out = []
    for report in reports:
        event = events.get(report.event_id)
        body: JsonDict = {
            "id": report.pk,
            "received_ts": report.received_ts,
            "room_id": report.room_id,
            "name": state_value(report.room_id, EventTypes.NAME, "name"),
            "canonical_alias": state_value(report.room_id, EventTypes.CANONICAL_ALIAS, "alias"),
            "event_id": report.event_id,
            "user_id": report.reporter,
            "reason": report.reason,
            "score": report.score,
            "sender": event.sender if event is not None else None,
        }
        if with_event:
            body["event_json"] = json.loads(event.json) if event is not None else None
        out.append(body)
    return out
