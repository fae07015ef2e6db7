"""PDU accessors, constants and format checks shared by the protocol core.

Events are plain dicts: the PDU JSON as on the wire. Room versions 3 and later do not carry
an ``event_id`` field; callers that need an event's ID compute it with
``matrixhs.protocol.hashing.compute_event_id`` or keep it next to the dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from matrixhs.protocol.canonical_json import InvalidCanonicalJson, encode_canonical_json
from matrixhs.protocol.ids import MAX_ID_BYTES, server_name_of
from matrixhs.protocol.room_versions import EventFormat, RoomVersion

JsonDict = dict[str, Any]
#: A key of a state map: ``(event_type, state_key)``.
StateKey = tuple[str, str]

#: Largest PDU, as canonical JSON with signatures (client-server API "Size limits").
MAX_PDU_SIZE: Final = 65536
#: Limit on ``state_key`` and ``type`` (client-server API "Size limits").
MAX_KEY_BYTES: Final = 255


class EventTypes:
    """Event types the protocol core gives meaning to."""

    CREATE: Final = "m.room.create"
    MEMBER: Final = "m.room.member"
    JOIN_RULES: Final = "m.room.join_rules"
    POWER_LEVELS: Final = "m.room.power_levels"
    THIRD_PARTY_INVITE: Final = "m.room.third_party_invite"
    REDACTION: Final = "m.room.redaction"
    ALIASES: Final = "m.room.aliases"
    HISTORY_VISIBILITY: Final = "m.room.history_visibility"
    NAME: Final = "m.room.name"
    TOPIC: Final = "m.room.topic"
    AVATAR: Final = "m.room.avatar"
    CANONICAL_ALIAS: Final = "m.room.canonical_alias"
    GUEST_ACCESS: Final = "m.room.guest_access"
    ENCRYPTION: Final = "m.room.encryption"
    TOMBSTONE: Final = "m.room.tombstone"
    SERVER_ACL: Final = "m.room.server_acl"


class Membership:
    """Values of ``content.membership`` in ``m.room.member`` events."""

    JOIN: Final = "join"
    INVITE: Final = "invite"
    LEAVE: Final = "leave"
    BAN: Final = "ban"
    KNOCK: Final = "knock"


class JoinRules:
    """Values of ``content.join_rule`` in ``m.room.join_rules`` events."""

    PUBLIC: Final = "public"
    INVITE: Final = "invite"
    KNOCK: Final = "knock"
    RESTRICTED: Final = "restricted"
    KNOCK_RESTRICTED: Final = "knock_restricted"
    PRIVATE: Final = "private"


CREATE_KEY: Final[StateKey] = (EventTypes.CREATE, "")
POWER_LEVELS_KEY: Final[StateKey] = (EventTypes.POWER_LEVELS, "")
JOIN_RULES_KEY: Final[StateKey] = (EventTypes.JOIN_RULES, "")


class InvalidEvent(ValueError):
    """A PDU does not follow the event format of its room version."""


class EventTooLarge(InvalidEvent):
    """A PDU, or one of its size-limited fields, is over the limit."""


def content_of(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event's ``content``, or an empty mapping if it is missing or not an object."""
    content = event.get("content")
    return content if isinstance(content, dict) else {}


def state_key_of(event: Mapping[str, Any]) -> str | None:
    """The ``state_key`` of a state event, ``None`` for a message event."""
    state_key = event.get("state_key")
    return state_key if isinstance(state_key, str) else None


def state_key_tuple(event: Mapping[str, Any]) -> StateKey | None:
    """``(type, state_key)`` of a state event, ``None`` for a message event."""
    state_key = state_key_of(event)
    event_type = event.get("type")
    if state_key is None or not isinstance(event_type, str):
        return None
    return (event_type, state_key)


def membership_of(event: Mapping[str, Any]) -> str | None:
    """``content.membership`` of an ``m.room.member`` event, if it is a string."""
    membership = content_of(event).get("membership")
    return membership if isinstance(membership, str) else None


def sender_domain(event: Mapping[str, Any]) -> str:
    """The server name of the event's ``sender``."""
    sender = event.get("sender")
    return server_name_of(sender) if isinstance(sender, str) else ""


def _reference_ids(refs: object) -> list[str]:
    # v1/v2 reference events as [event_id, {hashes}] pairs, later versions as plain IDs.
    if not isinstance(refs, list):
        return []
    ids = []
    for ref in refs:
        if isinstance(ref, list) and ref and isinstance(ref[0], str):
            ids.append(ref[0])
        elif isinstance(ref, str):
            ids.append(ref)
    return ids


def prev_event_ids(event: Mapping[str, Any]) -> list[str]:
    """The IDs in ``prev_events`` (either format)."""
    return _reference_ids(event.get("prev_events"))


def auth_event_ids(
    event: Mapping[str, Any], rv: RoomVersion, *, include_create: bool = True
) -> list[str]:
    """The IDs in ``auth_events`` (either format).

    Args:
        event: the PDU.
        rv: its room version.
        include_create: in room versions whose room ID is derived from the create event
            (v12), add the create event's ID, which ``auth_events`` never lists but the
            ``room_id`` implies. Graph walks (auth chains, state resolution) want this.
    """
    ids = _reference_ids(event.get("auth_events"))
    if include_create and rv.room_id_from_create_event:
        room_id = event.get("room_id")
        if isinstance(room_id, str) and room_id.startswith("!"):
            create_id = create_event_id_for_room(room_id)
            if create_id not in ids:
                ids.append(create_id)
    return ids


def create_event_id_for_room(room_id: str) -> str:
    """The create event ID a v12-style room ID stands for (``!x`` -> ``$x``)."""
    return "$" + room_id[1:]


def room_id_for_create_event_id(event_id: str) -> str:
    """The room ID of a v12-style room, given its create event ID (``$x`` -> ``!x``)."""
    return "!" + event_id[1:]


def check_size_limits(event: Mapping[str, Any], rv: RoomVersion) -> None:
    """Check the client-server API "Size limits" for a PDU.

    The whole event, as canonical JSON with signatures, must be at most 65536 bytes;
    ``sender``, ``room_id``, ``event_id`` (where carried), ``state_key`` and ``type`` at most
    255 bytes each.

    Raises:
        EventTooLarge: a limit is exceeded.
        InvalidCanonicalJson: the event cannot be encoded (strict room versions).
    """
    fields = ["sender", "room_id", "state_key", "type"]
    if rv.event_format is EventFormat.V1:
        fields.append("event_id")
    for field in fields:
        value = event.get(field)
        limit = MAX_KEY_BYTES if field in ("state_key", "type") else MAX_ID_BYTES
        if isinstance(value, str) and len(value.encode("utf-8")) > limit:
            raise EventTooLarge(f"'{field}' is longer than {limit} bytes")
    size = len(encode_canonical_json(event, strict=rv.strict_canonical_json))
    if size > MAX_PDU_SIZE:
        raise EventTooLarge(f"event is {size} bytes, over the {MAX_PDU_SIZE} byte limit")


#: Largest ``depth`` a PDU may carry (server-server API: at most 2**63 - 1; canonical JSON
#: caps integers at 2**53 - 1 anyway).
MAX_DEPTH: Final = 2**53 - 1
#: Most prev events / auth events a PDU may reference (spec: prev_events at most 20,
#: auth_events at most 10 are what servers send; a little slack for older servers).
MAX_PREV_EVENTS: Final = 20
MAX_AUTH_EVENTS: Final = 10


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_references(value: object, name: str, limit: int, rv: RoomVersion) -> None:
    if not isinstance(value, list) or len(value) > limit:
        raise InvalidEvent(f"{name} must be a list of at most {limit} references")
    for ref in value:
        if rv.event_format is EventFormat.V1:
            ok = (
                isinstance(ref, list)
                and len(ref) == 2
                and isinstance(ref[0], str)
                and isinstance(ref[1], dict)
            )
        else:
            ok = isinstance(ref, str)
        if not ok or not _reference_ids([ref])[0].startswith("$"):
            raise InvalidEvent(f"{name} holds a malformed event reference")


def check_pdu_format(pdu: Mapping[str, Any], rv: RoomVersion) -> None:
    """Server-server API "Checks performed on receipt of a PDU", step 1: a valid event of
    its room version's format (fields present, of the right types, within the size
    limits). An event that fails is dropped, not stored.

    Raises:
        InvalidEvent: the event is malformed (EventTooLarge when over a size limit).
    """
    for field in ("type", "sender"):
        if not isinstance(pdu.get(field), str) or not pdu[field]:
            raise InvalidEvent(f"'{field}' must be a non-empty string")
    is_v12_create = rv.room_id_from_create_event and pdu["type"] == EventTypes.CREATE
    room_id = pdu.get("room_id")
    if is_v12_create:
        if room_id is not None:
            raise InvalidEvent("a create event has no room_id in this room version")
    elif not isinstance(room_id, str) or not room_id.startswith("!"):
        raise InvalidEvent("'room_id' must be a room ID")
    if not pdu["sender"].startswith("@") or ":" not in pdu["sender"]:
        raise InvalidEvent("'sender' must be a user ID")
    if not isinstance(pdu.get("content"), dict):
        raise InvalidEvent("'content' must be an object")
    if "state_key" in pdu and not isinstance(pdu["state_key"], str):
        raise InvalidEvent("'state_key' must be a string")
    depth, ts = pdu.get("depth"), pdu.get("origin_server_ts")
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= MAX_DEPTH:
        raise InvalidEvent("'depth' must be a non-negative integer")
    if not _is_int(ts):
        raise InvalidEvent("'origin_server_ts' must be an integer")
    _check_references(pdu.get("prev_events"), "prev_events", MAX_PREV_EVENTS, rv)
    _check_references(pdu.get("auth_events"), "auth_events", MAX_AUTH_EVENTS, rv)
    hashes = pdu.get("hashes")
    if not isinstance(hashes, dict) or not isinstance(hashes.get("sha256"), str):
        raise InvalidEvent("'hashes' must hold a sha256 hash")
    if not isinstance(pdu.get("signatures"), dict):
        raise InvalidEvent("'signatures' must be an object")
    if rv.event_format is EventFormat.V1:
        event_id = pdu.get("event_id")
        if not isinstance(event_id, str) or not event_id.startswith("$") or ":" not in event_id:
            raise InvalidEvent("'event_id' must be an event ID")
    if "redacts" in pdu and not isinstance(pdu["redacts"], str):
        raise InvalidEvent("'redacts' must be an event ID")
    try:
        check_size_limits(pdu, rv)
    except InvalidCanonicalJson as exc:
        raise InvalidEvent(f"not canonical JSON: {exc}") from exc
