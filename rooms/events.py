"""The one module that creates and persists room events (STYLE 3.3).

``create_and_send_event`` builds a PDU with the protocol core (hashes, signature, event
ID), checks it against the auth rules with the room's current state, and persists it
with its graph edges, state group, current state and memberships, all in one
transaction that holds the room's row lock. The stream position is taken last, so
positions commit in order (matrixhs.streams). After commit, the room's local users
are woken.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from federation.keys import get_signing_key, server_keys
from matrixhs.errors import BadJson, Forbidden, JsonDict, NotFound, TooLarge
from matrixhs.notifier import notify_users
from matrixhs.protocol.canonical_json import InvalidCanonicalJson, encode_canonical_json
from matrixhs.protocol.event_auth import EventRejected, auth_types_for_event, check_auth
from matrixhs.protocol.events import (
    CREATE_KEY,
    POWER_LEVELS_KEY,
    EventTooLarge,
    EventTypes,
    InvalidEvent,
    StateKey,
)
from matrixhs.protocol.power_levels import PowerLevels
from matrixhs.protocol.redaction import redacted_event_id, should_apply_redaction
from matrixhs.protocol.room_versions import RoomVersion, get_room_version
from matrixhs.protocol.signing import build_pdu
from matrixhs.streams import Stream, next_position
from matrixhs.time import now_ms
from rooms.models import (
    ClientTransaction,
    CurrentStateEvent,
    Event,
    EventAuthEdge,
    EventEdge,
    ForwardExtremity,
    Room,
    RoomMembership,
)
from rooms.state import new_state_group

logger = logging.getLogger(__name__)

#: At most this many forward extremities become the prev_events of a new event.
MAX_PREV_EVENTS = 10

# The hot path (send) uses plain SQL on these tables: the ORM's query building costs
# more than the queries themselves, and it runs while the room is locked.
_ROOM = Room._meta.db_table
_EVENT = Event._meta.db_table
_EDGE = EventEdge._meta.db_table
_AUTH_EDGE = EventAuthEdge._meta.db_table
_EXTREMITY = ForwardExtremity._meta.db_table
_CURRENT = CurrentStateEvent._meta.db_table


def _rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _execute(sql: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@dataclass(frozen=True)
class Txn:
    """A client transaction: the same (user, device, endpoint, txn_id) gives one event."""

    user_id: str
    device_id: str
    endpoint: str
    txn_id: str


class _PduCache:
    """Stored PDUs by event ID. Events never change once stored (a redaction marks the
    event, it does not rewrite its JSON), so caching them in memory is safe in every
    process; this saves the hot paths re-reading auth and state events."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[str, str] = OrderedDict()
        self.lock = threading.Lock()

    def get_many(self, event_ids: set[str]) -> dict[str, str]:
        with self.lock:
            found = {e: self.entries[e] for e in event_ids if e in self.entries}
            for event_id in found:
                self.entries.move_to_end(event_id)
        return found

    def put(self, event_id: str, raw: str) -> None:
        with self.lock:
            self.entries[event_id] = raw
            self.entries.move_to_end(event_id)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)


_pdu_cache = _PduCache(20_000)


def load_pdus(event_ids: Iterable[str]) -> dict[str, JsonDict]:
    """The stored PDUs (exactly as signed) of the given events that we have."""
    wanted = set(event_ids)
    raw = _pdu_cache.get_many(wanted)
    missing = wanted - raw.keys()
    if missing:
        for event_id, text in Event.objects.filter(event_id__in=missing).values_list(
            "event_id", "json"
        ):
            raw[event_id] = text
            _pdu_cache.put(event_id, text)
    return {event_id: json.loads(text) for event_id, text in raw.items()}


def current_power_levels(room: Room) -> PowerLevels:
    """The room's power levels now (with its creators, per its room version)."""
    rv = get_room_version(room.room_version)
    state = current_state_ids(room, [POWER_LEVELS_KEY, CREATE_KEY])
    pdus = load_pdus(state.values())
    return PowerLevels.from_state(
        pdus.get(state.get(POWER_LEVELS_KEY, "")), pdus.get(state.get(CREATE_KEY, "")), rv
    )


def current_state_ids(room: Room, keys: Iterable[StateKey] | None = None) -> dict[StateKey, str]:
    """The room's current state as (type, state_key) -> event ID, optionally for some keys."""
    sql = f"SELECT type, state_key, event_id FROM {_CURRENT} WHERE room_id = %s"
    params: list[Any] = [room.pk]
    if keys is not None:
        keys = list(keys)
        if not keys:
            return {}
        sql += " AND (" + " OR ".join(["(type = %s AND state_key = %s)"] * len(keys)) + ")"
        params += [part for key in keys for part in key]
    return {(t, k): e for t, k, e in _rows(sql, params)}


def lock_room(room_id: str) -> Room:
    """The room's row, locked until commit (per-room serialization across processes).

    Raises:
        NotFound: unknown room.
    """
    sql = (
        f"SELECT id, room_id, room_version, creator, created_ts, is_public, "
        f"current_state_group_id FROM {_ROOM} WHERE room_id = %s"
    )
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    rows = _rows(sql, [room_id])
    if not rows:
        raise NotFound("Unknown room")
    pk, room_id, version, creator, created_ts, is_public, group_id = rows[0]
    return Room(
        pk=pk,
        room_id=room_id,
        room_version=version,
        creator=creator,
        created_ts=created_ts,
        is_public=bool(is_public),
        current_state_group_id=group_id,
    )


def create_and_send_event(
    sender: str,
    room_id: str,
    event_type: str,
    content: JsonDict,
    state_key: str | None = None,
    txn: Txn | None = None,
    redacts: str | None = None,
) -> Event:
    """Create, authorize and persist a local event, or return the one ``txn`` made.

    Raises:
        NotFound: unknown room.
        Forbidden: the auth rules refuse the event.
        TooLarge: the event is over 64 KiB (or a field over its limit).
        BadJson: the content cannot be canonical JSON (floats, huge integers).
    """
    if txn is not None:
        previous = _event_of_txn(txn)
        if previous is not None:
            return previous
    try:
        with transaction.atomic():
            room = lock_room(room_id)
            event = send_in_locked_room(room, sender, event_type, content, state_key, redacts)
            if txn is not None:
                ClientTransaction.objects.create(
                    user_id=txn.user_id,
                    device_id=txn.device_id,
                    endpoint=txn.endpoint,
                    txn_id=txn.txn_id,
                    event_id=event.event_id,
                    created_ts=now_ms(),
                )
            return event
    except IntegrityError:
        # The same transaction ID raced us and won: answer with its event.
        previous = _event_of_txn(txn) if txn is not None else None
        if previous is None:
            raise
        return previous


def _event_of_txn(txn: Txn) -> Event | None:
    done = ClientTransaction.objects.filter(
        user_id=txn.user_id, device_id=txn.device_id, endpoint=txn.endpoint, txn_id=txn.txn_id
    ).first()
    return Event.objects.get(event_id=done.event_id) if done is not None else None


def send_in_locked_room(
    room: Room,
    sender: str,
    event_type: str,
    content: JsonDict,
    state_key: str | None = None,
    redacts: str | None = None,
) -> Event:
    """Build, authorize and persist an event in a room locked by the caller's transaction."""
    rv = get_room_version(room.room_version)
    extremities = _rows(
        f"SELECT event_id, depth FROM {_EXTREMITY} WHERE room_id = %s "
        f"ORDER BY depth DESC, event_id LIMIT {MAX_PREV_EVENTS}",
        [room.pk],
    )
    partial: JsonDict = {
        "type": event_type,
        "sender": sender,
        "content": content,
        "room_id": room.room_id,
        "prev_events": [event_id for event_id, _ in extremities],
        "depth": max((depth for _, depth in extremities), default=0) + 1,
        "origin_server_ts": now_ms(),
    }
    if state_key is not None:
        partial["state_key"] = state_key
    if redacts is not None:
        partial["redacts"] = redacts
    wanted = auth_types_for_event(partial, rv) | {CREATE_KEY}
    state_key_tuple = (event_type, state_key) if state_key is not None else None
    if state_key_tuple is not None:
        wanted.add(state_key_tuple)
    state = current_state_ids(room, wanted)
    auth_keys = auth_types_for_event(partial, rv)
    partial["auth_events"] = sorted(state[key] for key in auth_keys if key in state)
    auth_state = {key: state[key] for key in auth_keys | {CREATE_KEY} if key in state}
    event_id, pdu = _build(partial, rv)
    auth_pdus = load_pdus(auth_state.values())
    _authorize(pdu, {key: auth_pdus[eid] for key, eid in auth_state.items()}, rv)
    replaces = state.get(state_key_tuple) if state_key_tuple is not None else None
    return persist_event(room, rv, event_id, pdu, replaces_state=replaces)


def _build(partial: JsonDict, rv: RoomVersion) -> tuple[str, JsonDict]:
    try:
        return build_pdu(partial, settings.MATRIXHS_SERVER_NAME, get_signing_key(), rv)
    except EventTooLarge as exc:
        raise TooLarge(f"Event too large: {exc}") from exc
    except (InvalidCanonicalJson, InvalidEvent) as exc:
        raise BadJson(f"Invalid event: {exc}") from exc


def _authorize(pdu: JsonDict, auth_events: Mapping[StateKey, JsonDict], rv: RoomVersion) -> None:
    try:
        check_auth(pdu, auth_events, rv, server_keys())
    except EventRejected as exc:
        raise Forbidden(f"You are not allowed to do that: {exc.reason}") from exc


def build_create_event(
    sender: str, content: JsonDict, rv: RoomVersion, origin_server_ts: int | None = None
) -> tuple[str, str, JsonDict]:
    """The create event of a new room: (room_id, event_id, pdu), authorized.

    From v12 the room ID is derived from the create event; before, it is random.
    """
    partial: JsonDict = {
        "type": EventTypes.CREATE,
        "state_key": "",
        "sender": sender,
        "content": content,
        "prev_events": [],
        "auth_events": [],
        "depth": 1,
        "origin_server_ts": origin_server_ts if origin_server_ts is not None else now_ms(),
    }
    if not rv.room_id_from_create_event:
        room_id = f"!{secrets.token_urlsafe(18)}:{settings.MATRIXHS_SERVER_NAME}"
        partial["room_id"] = room_id
    event_id, pdu = _build(partial, rv)
    if rv.room_id_from_create_event:
        room_id = "!" + event_id[1:]
    _authorize(pdu, {}, rv)
    return room_id, event_id, pdu


def create_room(sender: str, content: JsonDict, rv: RoomVersion, is_public: bool) -> Room:
    """A new room and its create event (the caller's transaction sends the rest).

    From v12 the room ID is the create event's hash, so two identical createRoom calls in
    the same millisecond would make the same room: the second moves its timestamp on.
    """
    started = now_ms()
    for attempt in range(10):
        room_id, event_id, pdu = build_create_event(sender, content, rv, started + attempt)
        try:
            with transaction.atomic():  # a savepoint: a twin room is a retry, not a failure
                room = Room.objects.create(
                    room_id=room_id,
                    room_version=rv.identifier,
                    creator=sender,
                    created_ts=started,
                    is_public=is_public,
                )
        except IntegrityError:
            continue
        persist_event(room, rv, event_id, pdu)
        return room
    raise RuntimeError("Could not find a free room ID")


def persist_event(
    room: Room,
    rv: RoomVersion,
    event_id: str,
    pdu: JsonDict,
    replaces_state: str | None = None,
) -> Event:
    """Store an authorized event as the room's new latest event (the caller holds the lock)."""
    state_key = pdu.get("state_key")
    before_id = room.current_state_group_id
    after_id = before_id
    if state_key is not None:
        group = new_state_group(
            room, room.current_state_group, {(pdu["type"], state_key): event_id}
        )
        after_id = group.pk
    relation = pdu["content"].get("m.relates_to") if isinstance(pdu.get("content"), dict) else None
    relates_to, rel_type = _relation(relation)
    membership = pdu["content"].get("membership") if pdu["type"] == EventTypes.MEMBER else None
    prev_ids = [p if isinstance(p, str) else p[0] for p in pdu.get("prev_events", [])]
    auth_ids = [a if isinstance(a, str) else a[0] for a in pdu.get("auth_events", [])]
    stream_ordering = next_position(Stream.EVENTS)  # last: see matrixhs.streams
    event = Event(
        event_id=event_id,
        room=room,
        type=pdu["type"],
        state_key=state_key,
        sender=pdu["sender"],
        depth=pdu["depth"],
        origin_server_ts=pdu["origin_server_ts"],
        stream_ordering=stream_ordering,
        json=encode_canonical_json(pdu, strict=rv.strict_canonical_json).decode("utf-8"),
        membership=membership if isinstance(membership, str) else None,
        replaces_state=replaces_state,
        relates_to=relates_to,
        rel_type=rel_type,
        state_group_before_id=before_id,
        state_group_id=after_id,
        received_ts=now_ms(),
    )
    _insert_event(event, prev_ids, auth_ids)
    if state_key is not None:
        _update_current_state(room, event, pdu, after_id)
    if pdu["type"] == EventTypes.REDACTION and state_key is None:  # state ones redact nothing
        _apply_redaction(room, rv, event, pdu)
    _notify_local_members(room, pdu)
    return event


_EVENT_COLUMNS = (
    "event_id",
    "room_id",
    "type",
    "state_key",
    "sender",
    "depth",
    "origin_server_ts",
    "stream_ordering",
    "json",
    "outlier",
    "rejected_reason",
    "soft_failed",
    "redacted_by",
    "membership",
    "replaces_state",
    "relates_to",
    "rel_type",
    "state_group_before_id",
    "state_group_id",
    "received_ts",
)


def _insert_event(event: Event, prev_ids: list[str], auth_ids: list[str]) -> None:
    """The event row, its edges and the new forward extremity, in a few plain statements:
    this runs while the room is locked, so every round trip saved shortens the queue."""
    columns = ", ".join(_EVENT_COLUMNS)
    values = [getattr(event, name) for name in _EVENT_COLUMNS]
    event.pk = _rows(
        f"INSERT INTO {_EVENT} ({columns}) VALUES ({', '.join(['%s'] * len(values))}) RETURNING id",
        values,
    )[0][0]
    if prev_ids:
        _execute(
            f"INSERT INTO {_EDGE} (event_id, prev_event_id) VALUES "
            + ", ".join(["(%s, %s)"] * len(prev_ids)),
            [part for p in prev_ids for part in (event.pk, p)],
        )
        _execute(
            f"DELETE FROM {_EXTREMITY} WHERE room_id = %s AND event_id IN "
            f"({', '.join(['%s'] * len(prev_ids))})",
            [event.room_id, *prev_ids],
        )
    if auth_ids:
        _execute(
            f"INSERT INTO {_AUTH_EDGE} (event_id, auth_event_id) VALUES "
            + ", ".join(["(%s, %s)"] * len(auth_ids)),
            [part for a in auth_ids for part in (event.pk, a)],
        )
    _execute(
        f"INSERT INTO {_EXTREMITY} (room_id, event_id, depth) VALUES (%s, %s, %s)",
        [event.room_id, event.event_id, event.depth],
    )


def _relation(relation: Any) -> tuple[str | None, str | None]:
    if not isinstance(relation, dict):
        return None, None
    target, rel_type = relation.get("event_id"), relation.get("rel_type")
    if isinstance(target, str) and isinstance(rel_type, str) and len(target) <= 255:
        return target, rel_type[:255]
    in_reply_to = relation.get("m.in_reply_to")
    if isinstance(in_reply_to, dict) and isinstance(in_reply_to.get("event_id"), str):
        return in_reply_to["event_id"][:255], "m.in_reply_to"
    return None, None


def _update_current_state(room: Room, event: Event, pdu: JsonDict, group_id: int | None) -> None:
    CurrentStateEvent.objects.update_or_create(
        room=room,
        type=event.type,
        state_key=event.state_key,
        defaults={"event_id": event.event_id},
    )
    room.current_state_group_id = group_id
    room.save(update_fields=["current_state_group"])
    if event.type != EventTypes.MEMBER or event.membership is None:
        return
    content = pdu["content"]
    displayname, avatar = content.get("displayname"), content.get("avatar_url")
    RoomMembership.objects.update_or_create(
        room=room,
        user_id=event.state_key,
        defaults={
            "membership": event.membership,
            "event_id": event.event_id,
            "stream_ordering": event.stream_ordering,
            "sender": event.sender,
            "displayname": displayname if isinstance(displayname, str) else None,
            "avatar_url": avatar if isinstance(avatar, str) else None,
            "forgotten": False,
        },
    )


def _apply_redaction(room: Room, rv: RoomVersion, event: Event, pdu: JsonDict) -> None:
    """Mark the target redacted when the redaction may apply (room versions: "Handling
    redactions"); the stored PDU stays as signed, readers serve the pruned form."""
    target_id = redacted_event_id(pdu, rv)
    if target_id is None:
        return
    target = Event.objects.filter(event_id=target_id, room=room).first()
    if target is None or target.redacted_by is not None:
        return
    if should_apply_redaction(pdu, json.loads(target.json), current_power_levels(room)):
        Event.objects.filter(pk=target.pk).update(redacted_by=event.event_id)


def _notify_local_members(room: Room, pdu: JsonDict) -> None:
    """After commit, wake the room's local users (and the user whose membership changed)."""
    changed = pdu.get("state_key") if pdu["type"] == EventTypes.MEMBER else None

    def wake() -> None:
        suffix = f":{settings.MATRIXHS_SERVER_NAME}"
        members = set(
            RoomMembership.objects.filter(
                room=room, membership__in=("join", "invite", "knock")
            ).values_list("user_id", flat=True)
        )
        if isinstance(changed, str):
            members.add(changed)
        notify_users(user_id for user_id in members if user_id.endswith(suffix))

    transaction.on_commit(wake)
