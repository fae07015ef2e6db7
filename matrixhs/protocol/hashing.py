"""Content hashes, reference hashes, event IDs and v12 room IDs.

Spec: server-server API "Calculating the content hash for an event" and "Calculating the
reference hash for an event"; room versions "Event IDs"; appendix "Room IDs".
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

from unpaddedbase64 import decode_base64, encode_base64

from matrixhs.protocol.canonical_json import encode_canonical_json
from matrixhs.protocol.events import (
    EventTypes,
    InvalidEvent,
    JsonDict,
    room_id_for_create_event_id,
)
from matrixhs.protocol.redaction import redact_event
from matrixhs.protocol.room_versions import EventFormat, RoomVersion


def compute_content_hash(event: Mapping[str, Any], rv: RoomVersion) -> bytes:
    """SHA-256 of the event without ``unsigned``, ``signatures`` and ``hashes``.

    Raises:
        InvalidCanonicalJson: the event cannot be encoded as canonical JSON.
    """
    stripped = {
        key: value
        for key, value in event.items()
        if key not in ("unsigned", "signatures", "hashes")
    }
    return hashlib.sha256(encode_canonical_json(stripped, strict=rv.strict_canonical_json)).digest()


def add_content_hash(event: Mapping[str, Any], rv: RoomVersion) -> JsonDict:
    """Return a copy of ``event`` with ``hashes.sha256`` set to its content hash.

    Other algorithms already in ``hashes`` are kept.

    Raises:
        InvalidCanonicalJson: the event cannot be encoded as canonical JSON.
    """
    hashed = dict(event)
    hashes = dict(event.get("hashes") or {})
    hashes["sha256"] = encode_base64(compute_content_hash(event, rv))
    hashed["hashes"] = hashes
    return hashed


def check_content_hash(event: Mapping[str, Any], rv: RoomVersion) -> bool:
    """Whether ``hashes.sha256`` matches the event's content hash.

    A missing or undecodable hash counts as a mismatch. The spec's answer to a mismatch is
    to use the redacted form of the event (server-server API "Validating hashes").

    Raises:
        InvalidCanonicalJson: the event cannot be encoded as canonical JSON.
    """
    hashes = event.get("hashes")
    claimed = hashes.get("sha256") if isinstance(hashes, dict) else None
    if not isinstance(claimed, str):
        return False
    try:
        expected = decode_base64(claimed)
    except (binascii.Error, ValueError):
        return False
    return expected == compute_content_hash(event, rv)


def compute_reference_hash(event: Mapping[str, Any], rv: RoomVersion) -> bytes:
    """SHA-256 of the redacted event without ``signatures`` and ``unsigned``.

    Raises:
        InvalidCanonicalJson: the event cannot be encoded as canonical JSON.
    """
    redacted = redact_event(event, rv)
    redacted.pop("signatures", None)
    redacted.pop("unsigned", None)
    return hashlib.sha256(encode_canonical_json(redacted, strict=rv.strict_canonical_json)).digest()


def compute_event_id(event: Mapping[str, Any], rv: RoomVersion) -> str:
    """The event ID of a PDU.

    v1/v2 events carry their own ``$opaque:server`` ID. From v3 the ID is ``$`` plus the
    reference hash in unpadded base64: standard alphabet in v3, URL-safe from v4.

    Raises:
        InvalidEvent: a v1/v2 event has no ``event_id``.
        InvalidCanonicalJson: the event cannot be encoded as canonical JSON.
    """
    if rv.event_format is EventFormat.V1:
        event_id = event.get("event_id")
        if not isinstance(event_id, str):
            raise InvalidEvent("room versions 1 and 2 need an 'event_id' on every event")
        return event_id
    urlsafe = rv.event_format is EventFormat.V4
    return "$" + encode_base64(compute_reference_hash(event, rv), urlsafe=urlsafe)


def compute_room_id(create_event: Mapping[str, Any], rv: RoomVersion) -> str:
    """The room ID of a room whose ID derives from its create event (v12): ``!`` + hash.

    Raises:
        InvalidEvent: the room version does not derive room IDs, or the event is not an
            ``m.room.create`` event.
        InvalidCanonicalJson: the event cannot be encoded as canonical JSON.
    """
    if not rv.room_id_from_create_event:
        raise InvalidEvent(f"room version {rv.identifier} does not derive room IDs")
    if create_event.get("type") != EventTypes.CREATE:
        raise InvalidEvent("only an m.room.create event defines a room ID")
    return room_id_for_create_event_id(compute_event_id(create_event, rv))
