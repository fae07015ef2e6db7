"""Re-verify stored events: hashes, our signature, event ID, and the auth rules against
each event's own auth events. Used by `manage.py verify_events` and a self-check test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from signedjson.key import get_verify_key

from federation.keys import get_signing_key, server_keys
from matrixhs.protocol.event_auth import EventRejected, check_auth, check_auth_events_list
from matrixhs.protocol.events import CREATE_KEY, EventTypes
from matrixhs.protocol.hashing import check_content_hash, compute_event_id
from matrixhs.protocol.room_versions import get_room_version
from matrixhs.protocol.signing import InvalidSignature, verify_event_signature
from rooms.events import load_pdus
from rooms.models import Event


@dataclass(frozen=True)
class Problem:
    event_id: str
    reason: str


def verify_events(batch_size: int = 500) -> Iterator[Problem]:
    """Every accepted local event, checked; yields what is wrong (nothing, normally)."""
    verify_key = get_verify_key(get_signing_key())
    server_name = settings.MATRIXHS_SERVER_NAME
    events = Event.objects.filter(rejected_reason__isnull=True).select_related("room")
    for event in events.order_by("pk").iterator(chunk_size=batch_size):
        reason = _check(event, server_name, verify_key)
        if reason is not None:
            yield Problem(event.event_id, reason)


def _check(event: Event, server_name: str, verify_key: object) -> str | None:
    rv = get_room_version(event.room.room_version)
    pdu = json.loads(event.json)
    if not check_content_hash(pdu, rv):
        return "content hash mismatch"
    if compute_event_id(pdu, rv) != event.event_id:
        return "event ID does not match the reference hash"
    if pdu.get("sender", "").endswith(f":{server_name}"):
        try:
            verify_event_signature(pdu, server_name, verify_key, rv)  # type: ignore[arg-type]
        except InvalidSignature as exc:
            return f"bad signature: {exc}"
    auth_ids = [a if isinstance(a, str) else a[0] for a in pdu.get("auth_events", [])]
    auth_pdus = load_pdus(auth_ids)
    if len(auth_pdus) != len(set(auth_ids)):
        return "missing auth events"
    try:
        auth_map = dict(check_auth_events_list(pdu, list(auth_pdus.values()), rv))
        if rv.room_id_from_create_event and pdu["type"] != EventTypes.CREATE:
            create = Event.objects.filter(room=event.room, type=EventTypes.CREATE).first()
            if create is not None:
                auth_map[CREATE_KEY] = load_pdus([create.event_id])[create.event_id]
        check_auth(pdu, auth_map, rv, server_keys())
    except EventRejected as exc:
        return f"fails the auth rules: {exc.reason}"
    return None
