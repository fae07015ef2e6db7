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
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max

from federation.actions.outbound import enqueue_pdu
from federation.keys import get_signing_key, server_keys
from matrixhs import fastjson, metrics, sql
from matrixhs.errors import BadJson, Forbidden, JsonDict, NotFound, TooLarge
from matrixhs.notifier import notify_users
from matrixhs.protocol.canonical_json import InvalidCanonicalJson, encode_canonical_json
from matrixhs.protocol.event_auth import (
    EventRejected,
    auth_types_for_event,
    check_auth,
    check_auth_events_list,
    recheck_auth,
)
from matrixhs.protocol.events import (
    CREATE_KEY,
    POWER_LEVELS_KEY,
    EventTooLarge,
    EventTypes,
    InvalidEvent,
    Membership,
    StateKey,
    auth_event_ids,
    create_event_id_for_room,
    prev_event_ids,
    state_key_tuple,
)
from matrixhs.protocol.ids import server_name_of
from matrixhs.protocol.power_levels import PowerLevels
from matrixhs.protocol.redaction import redact_event, redacted_event_id, should_apply_redaction
from matrixhs.protocol.room_versions import EventFormat, RoomVersion, get_room_version
from matrixhs.protocol.signing import build_pdu
from matrixhs.protocol.state_res import resolve_state
from matrixhs.streams import Stream, next_position
from matrixhs.time import now_ms
from push.actions.notifications import do_evaluate_event, room_members
from push.actions.spans import do_track_memberships
from rooms.actions import successor, user_directory
from rooms.models import (
    ClientTransaction,
    CurrentStateEvent,
    Event,
    EventAuthEdge,
    EventEdge,
    ForwardExtremity,
    Room,
    RoomMembership,
    StateGroup,
    TimelineGap,
)
from rooms.search_index import SEARCH_KEYS, SEARCH_TABLE, searchable_pdu
from rooms.state import StateMap, new_state_group, state_of_group, states_of_groups

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
    """Stored PDUs (canonical JSON text) by event ID. The text never changes once stored
    (a redaction marks the event, it does not rewrite its JSON), so caching it in memory
    is safe in every process; whether the event has been redacted since is not cached
    (``load_pdus`` asks the database each time, so a redaction made by any process is
    seen at once)."""

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
    """The stored PDUs of the given events that we have, as every reader must see them:
    redacted events pruned by the redaction algorithm of their room version. This is
    the form the auth rules, state decisions (power levels, join rules, names) and
    clients all get, as on every other server ("Auth and state decisions read the
    redacted form"). One query whatever the number of events: it reads each event's
    redaction mark, and the JSON of those not cached yet.
    """
    wanted = set(event_ids)
    if not wanted:
        return {}
    cached = _pdu_cache.get_many(wanted)
    missing = sorted(wanted - cached.keys())
    ids = sorted(wanted)
    text_column = (
        f"CASE WHEN e.event_id IN ({', '.join(['%s'] * len(missing))}) THEN e.json END"
        if missing
        else "NULL"
    )
    rows = _rows(
        f"SELECT e.event_id, e.redacted_by, r.room_version, {text_column} "
        f"FROM {_EVENT} e JOIN {_ROOM} r ON r.id = e.room_id "
        f"WHERE e.event_id IN ({', '.join(['%s'] * len(ids))})",
        [*missing, *ids],
    )
    pdus: dict[str, JsonDict] = {}
    for event_id, redacted_by, room_version, text in rows:
        if text is None:
            text = cached[event_id]
        else:
            _pdu_cache.put(event_id, text)
        pdu = fastjson.loads(text)
        if redacted_by is not None:
            pdu = redact_event(pdu, get_room_version(room_version))
        pdus[event_id] = pdu
    return pdus


def stored_pdu(event: Event) -> JsonDict:
    """An event row's PDU as readers see it (pruned once redacted); ``event.room`` is read
    for the room version of redacted events, so select it with the rows."""
    pdu: JsonDict = fastjson.loads(event.json)
    if event.redacted_by is not None:
        pdu = redact_event(pdu, get_room_version(event.room.room_version))
    return pdu


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


#: Every send with a transaction ID asks first (written out once: the ORM's query building
#: cost more than the lookup).
_TXN_EVENT_SQL = (
    f"SELECT {', '.join(sql.columns(Event, 'e'))} FROM {ClientTransaction._meta.db_table} t "
    f"JOIN {Event._meta.db_table} e ON e.event_id = t.event_id "
    "WHERE t.user_id = %s AND t.device_id = %s AND t.endpoint = %s AND t.txn_id = %s"
)


def _event_of_txn(txn: Txn) -> Event | None:
    found = sql.rows(_TXN_EVENT_SQL, [txn.user_id, txn.device_id, txn.endpoint, txn.txn_id])
    return sql.instance(Event, found[0]) if found else None


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
    partial, state = _partial_event(room, rv, sender, event_type, content, state_key, redacts)
    event_id, pdu = _build(partial, rv)
    auth_keys = auth_types_for_event(partial, rv) | {CREATE_KEY}
    auth_state = {key: state[key] for key in auth_keys if key in state}
    auth_pdus = load_pdus(auth_state.values())
    _authorize(pdu, {key: auth_pdus[eid] for key, eid in auth_state.items()}, rv)
    key = (event_type, state_key) if state_key is not None else None
    replaces = state.get(key) if key is not None else None
    return persist_event(room, rv, event_id, pdu, replaces_state=replaces)


def _partial_event(
    room: Room,
    rv: RoomVersion,
    sender: str,
    event_type: str,
    content: JsonDict,
    state_key: str | None = None,
    redacts: str | None = None,
) -> tuple[JsonDict, dict[StateKey, str]]:
    """An unsigned event on top of the room's forward extremities, citing its auth events
    from the current state; with the current state of the keys that matter to it."""
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
    if state_key is not None:
        wanted.add((event_type, state_key))
    state = current_state_ids(room, wanted)
    auth_keys = auth_types_for_event(partial, rv)
    partial["auth_events"] = sorted(state[key] for key in auth_keys if key in state)
    return partial, state


def build_local_event(
    room: Room,
    rv: RoomVersion,
    sender: str,
    event_type: str,
    content: JsonDict,
    state_key: str | None = None,
) -> tuple[str, JsonDict]:
    """A signed event of ours, authorized against the current state, not stored: for an
    event another server must see (and sign) first, such as an invite to its user. The
    caller holds the room's lock.

    Raises:
        Forbidden: the auth rules refuse it.
    """
    partial, state = _partial_event(room, rv, sender, event_type, content, state_key)
    event_id, pdu = _build(partial, rv)
    auth_keys = auth_types_for_event(partial, rv) | {CREATE_KEY}
    auth_state = {key: state[key] for key in auth_keys if key in state}
    auth_pdus = load_pdus(auth_state.values())
    _authorize(pdu, {key: auth_pdus[eid] for key, eid in auth_state.items()}, rv)
    return event_id, pdu


#: The state shown of a room to a user who is invited or knocks (spec "Stripped state").
STRIPPED_STATE_TYPES = (
    EventTypes.CREATE,
    EventTypes.JOIN_RULES,
    EventTypes.NAME,
    EventTypes.AVATAR,
    EventTypes.CANONICAL_ALIAS,
    EventTypes.ENCRYPTION,
    EventTypes.TOPIC,
)


def stripped_state_of(room: Room) -> list[JsonDict]:
    """The state events that identify the room (invite_room_state, knock_room_state over
    federation): since spec 1.16 full PDUs, the create event among them; the receiving
    server strips them for its clients."""
    state = current_state_ids(room, [(t, "") for t in STRIPPED_STATE_TYPES])
    pdus = load_pdus(state.values())
    return [pdus[e] for e in state.values() if e in pdus]


def reject_locally(room_id: str, user_id: str) -> None:
    """Reject an invite to a room on other servers that none of them could be reached
    for: a leave of ours on top of the invite, kept here only (it is never sent)."""
    membership = RoomMembership.objects.filter(room__room_id=room_id, user_id=user_id).first()
    if membership is None or membership.membership not in ("invite", "knock"):
        return
    invite = load_pdus([membership.event_id]).get(membership.event_id)
    room = Room.objects.get(room_id=room_id)
    rv = get_room_version(room.room_version)
    partial: JsonDict = {
        "type": EventTypes.MEMBER,
        "state_key": user_id,
        "sender": user_id,
        "content": {"membership": "leave"},
        "room_id": room_id,
        "prev_events": [membership.event_id],
        "auth_events": [membership.event_id],
        "depth": (invite or {}).get("depth", 0) + 1,
        "origin_server_ts": now_ms(),
    }
    event_id, pdu = _build(partial, rv)
    persist_out_of_band_membership(room_id, event_id, pdu, None)


def event_template(
    room_id: str, sender: str, event_type: str, content: JsonDict, state_key: str
) -> tuple[RoomVersion, JsonDict]:
    """An unsigned event for another server to fill in and sign (make_join, make_leave,
    make_knock): in the format of the room's version, on top of the room as it is now.

    Raises:
        NotFound: the room is not known here.
    """
    room = Room.objects.filter(room_id=room_id).first()
    if room is None:
        raise NotFound("Unknown room")
    rv = get_room_version(room.room_version)
    partial, _ = _partial_event(room, rv, sender, event_type, content, state_key)
    if rv.event_format is EventFormat.V1:
        partial["prev_events"] = [[e, {}] for e in partial["prev_events"]]
        partial["auth_events"] = [[e, {}] for e in partial["auth_events"]]
    partial["origin"] = server_name_of(sender)
    return rv, partial


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


def persist_out_of_band_membership(
    room_id: str, event_id: str, pdu: JsonDict, stripped_state: list[JsonDict] | None
) -> None:
    """A membership of a local user in a room we are not in (an invite from another
    server, or our rejection of it, or a knock): stored outside the graph, but with a
    stream position, so that the user's /sync sees it. ``stripped_state`` is what the
    user is shown of the room.

    Raises:
        NotFound: the room is not known here.
    """
    with transaction.atomic():
        room = lock_room(room_id)
        if known_event_ids([event_id]):
            return
        rv = get_room_version(room.room_version)
        event = _event_row(room, rv, event_id, pdu, depth=pdu["depth"], outlier=True)
        event.stream_ordering = next_position(Stream.EVENTS)
        _insert_event(
            event,
            pdu,
            prev_event_ids(pdu),
            auth_event_ids(pdu, rv, include_create=False),
            extremity=False,
        )
        content = pdu.get("content", {})
        displayname, avatar = content.get("displayname"), content.get("avatar_url")
        RoomMembership.objects.update_or_create(
            room=room,
            user_id=pdu["state_key"],
            defaults={
                "membership": event.membership,
                "event_id": event_id,
                "stream_ordering": event.stream_ordering,
                "sender": pdu["sender"],
                "displayname": displayname if isinstance(displayname, str) else None,
                "avatar_url": avatar if isinstance(avatar, str) else None,
                "forgotten": False,
                "stripped_state": stripped_state,
            },
        )
        do_track_memberships(room, {pdu["state_key"]: (event.membership, event.stream_ordering)})
        _notify_local_members(room, event, pdu)


def remember_remote_room(room_id: str, rv: RoomVersion, create: JsonDict | None) -> Room:
    """The row of a room that lives on other servers, made when we first hear of it (an
    invite, a join); nothing of its graph or state is stored yet."""
    sender = create.get("sender") if create is not None else None
    room, _ = Room.objects.get_or_create(
        room_id=room_id,
        defaults={
            "room_version": rv.identifier,
            "creator": sender if isinstance(sender, str) else "",
            "created_ts": now_ms(),
        },
    )
    return room


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
    """Store an authorized local event as the room's new latest event (the caller holds
    the lock): its prev events are the room's extremities, so the state before it is the
    room's current state."""
    key = state_key_tuple(pdu)
    before_id = room.current_state_group_id
    after_id = before_id
    if key is not None:
        after_id = new_state_group(room, room.current_state_group, {key: event_id}).pk
    event = _event_row(
        room,
        rv,
        event_id,
        pdu,
        depth=pdu["depth"],
        state_group_before_id=before_id,
        state_group_id=after_id,
        replaces_state=replaces_state,
    )
    event.stream_ordering = next_position(Stream.EVENTS)  # last: see matrixhs.streams
    _insert_event(event, pdu, prev_event_ids(pdu), auth_event_ids(pdu, rv, include_create=False))
    if key is not None:
        _apply_state_delta(room, {key: event_id}, set(), after_id, [event])
    if event.redacts is not None:
        _apply_redaction(room, rv, event, pdu)
    _notify_local_members(room, event, pdu)
    enqueue_pdu(room, event_id, pdu)
    return event


def _event_row(
    room: Room, rv: RoomVersion, event_id: str, pdu: JsonDict, *, depth: int, **columns: Any
) -> Event:
    """An Event row for a PDU (not saved); ``columns`` sets the rest (state groups, ...)."""
    content = pdu.get("content") if isinstance(pdu.get("content"), dict) else {}
    relates_to, rel_type = _relation(content.get("m.relates_to"))
    membership = content.get("membership") if pdu["type"] == EventTypes.MEMBER else None
    redacts = None
    if pdu["type"] == EventTypes.REDACTION and "state_key" not in pdu:
        redacts = redacted_event_id(pdu, rv)
    return Event(
        event_id=event_id,
        room=room,
        type=pdu["type"],
        state_key=pdu.get("state_key"),
        sender=pdu["sender"],
        depth=depth,
        origin_server_ts=pdu["origin_server_ts"],
        json=encode_canonical_json(pdu, strict=rv.strict_canonical_json).decode("utf-8"),
        membership=membership if isinstance(membership, str) else None,
        relates_to=relates_to,
        rel_type=rel_type,
        redacts=redacts if redacts is not None and len(redacts) <= 255 else None,
        received_ts=now_ms(),
        **columns,
    )


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
    "redacts",
    "membership",
    "replaces_state",
    "relates_to",
    "rel_type",
    "state_group_before_id",
    "state_group_id",
    "received_ts",
)


def _insert_event(
    event: Event,
    pdu: JsonDict,
    prev_ids: list[str],
    auth_ids: list[str],
    extremity: bool = True,
) -> None:
    """The event row, its edges, its search index row (when it is a timeline event with
    searchable text) and, for a new latest event (``extremity``), the forward
    extremities it replaces: a few plain statements, since this runs while the room is
    locked and every round trip saved shortens the queue."""
    columns = ", ".join(_EVENT_COLUMNS)
    values = [getattr(event, name) for name in _EVENT_COLUMNS]
    event.pk = _rows(
        f"INSERT INTO {_EVENT} ({columns}) VALUES ({', '.join(['%s'] * len(values))}) RETURNING id",
        values,
    )[0][0]
    _index_for_search(event, pdu)
    if prev_ids:
        _execute(
            f"INSERT INTO {_EDGE} (event_id, prev_event_id) VALUES "
            + ", ".join(["(%s, %s)"] * len(prev_ids)),
            [part for p in prev_ids for part in (event.pk, p)],
        )
    if auth_ids:
        _execute(
            f"INSERT INTO {_AUTH_EDGE} (event_id, auth_event_id) VALUES "
            + ", ".join(["(%s, %s)"] * len(auth_ids)),
            [part for a in auth_ids for part in (event.pk, a)],
        )
    local = event.sender.endswith(f":{settings.MATRIXHS_SERVER_NAME}")
    transaction.on_commit(_PERSISTED_LOCAL.inc if local else _PERSISTED_REMOTE.inc)
    if not extremity:
        return
    if prev_ids:
        _execute(
            f"DELETE FROM {_EXTREMITY} WHERE room_id = %s AND event_id IN "
            f"({', '.join(['%s'] * len(prev_ids))})",
            [event.room_id, *prev_ids],
        )
    _execute(
        f"INSERT INTO {_EXTREMITY} (room_id, event_id, depth) VALUES (%s, %s, %s)",
        [event.room_id, event.event_id, event.depth],
    )


_PERSISTED_LOCAL = metrics.EVENTS_PERSISTED.labels("local")
_PERSISTED_REMOTE = metrics.EVENTS_PERSISTED.labels("remote")


def _index_for_search(event: Event, pdu: JsonDict) -> None:
    """One INSERT into the search index for an accepted timeline event with searchable
    text (rooms/search_index.py); nothing for any other (encrypted, state of other types,
    outliers, rejected or soft-failed events)."""
    if (
        event.stream_ordering is None
        or event.outlier
        or event.rejected_reason is not None
        or event.soft_failed
        or event.redacted_by is not None
    ):
        return
    found = searchable_pdu(pdu)
    if found is None:
        return
    _execute(
        f"INSERT INTO {SEARCH_TABLE} (event_id, room_id, key, value, stream_ordering) "
        "VALUES (%s, %s, %s, %s, %s)",
        [event.pk, event.room_id, found[0], found[1], event.stream_ordering],
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


def _apply_state_delta(
    room: Room,
    changed: Mapping[StateKey, str],
    removed: set[StateKey],
    group_id: int | None,
    known: Sequence[Event] = (),
) -> None:
    """Move the room's current state (and the memberships derived from it) to
    ``group_id``, whose state differs from the current one by ``changed`` and
    ``removed``. ``known`` are changed events at hand (others are read)."""
    pdus = {e.event_id: fastjson.loads(e.json) for e in known}
    positions = {e.event_id: e.stream_ordering for e in known}
    missing = set(changed.values()) - pdus.keys()
    if missing:
        pdus = {**pdus, **load_pdus(missing)}
    for (event_type, state_key), event_id in changed.items():
        CurrentStateEvent.objects.update_or_create(
            room=room, type=event_type, state_key=state_key, defaults={"event_id": event_id}
        )
    spans: dict[str, tuple[str | None, int | None]] = {}
    for event_type, state_key in removed:
        CurrentStateEvent.objects.filter(room=room, type=event_type, state_key=state_key).delete()
        if event_type == EventTypes.MEMBER:
            RoomMembership.objects.filter(room=room, user_id=state_key).delete()
            spans[state_key] = (None, None)
    room.current_state_group_id = group_id
    room.save(update_fields=["current_state_group"])
    openness = [(EventTypes.JOIN_RULES, ""), (EventTypes.HISTORY_VISIBILITY, "")]
    if any(key in changed or key in removed for key in openness):
        state = current_state_ids(room, openness)
        contents = load_pdus(state.values())
        user_directory.do_set_room_openness(
            room,
            user_directory.is_directory_open(
                *(contents.get(state.get(key, ""), {}).get("content") for key in openness)
            ),
        )
    members = {key[1]: eid for key, eid in changed.items() if key[0] == EventTypes.MEMBER}
    gone = [state_key for event_type, state_key in removed if event_type == EventTypes.MEMBER]
    if not members:
        do_track_memberships(room, spans)
        if gone:
            user_directory.refresh_users(gone)
        return
    unknown = set(members.values()) - positions.keys()
    if unknown:
        positions.update(
            Event.objects.filter(event_id__in=unknown).values_list("event_id", "stream_ordering")
        )
    _carry_into_successor(room, members, pdus)
    for user_id, event_id in members.items():
        pdu = pdus[event_id]
        content = pdu.get("content", {})
        membership = content.get("membership")
        if not isinstance(membership, str):
            continue
        displayname, avatar = content.get("displayname"), content.get("avatar_url")
        RoomMembership.objects.update_or_create(
            room=room,
            user_id=user_id,
            defaults={
                "membership": membership,
                "event_id": event_id,
                "stream_ordering": positions.get(event_id),
                "sender": pdu.get("sender", ""),
                "displayname": displayname if isinstance(displayname, str) else None,
                "avatar_url": avatar if isinstance(avatar, str) else None,
                "forgotten": False,
                "stripped_state": None,
            },
        )
        spans[user_id] = (membership, positions.get(event_id))
    do_track_memberships(room, spans)
    user_directory.refresh_users([*members, *gone])


def _carry_into_successor(room: Room, members: Mapping[str, str], pdus: JsonDict) -> None:
    """Local users newly joined to an upgraded room take their push rules, tags and
    direct-chat listing of its predecessor along (rooms/actions/successor.py)."""
    suffix = f":{settings.MATRIXHS_SERVER_NAME}"
    joining = {
        user_id
        for user_id, event_id in members.items()
        if user_id.endswith(suffix)
        and pdus[event_id].get("content", {}).get("membership") == Membership.JOIN
    }
    if not joining:
        return
    old_room_id = successor.predecessor_of(room)
    if old_room_id is None:
        return
    already = RoomMembership.objects.filter(
        room=room, user_id__in=joining, membership=Membership.JOIN
    ).values_list("user_id", flat=True)
    successor.carry_all(joining - set(already), old_room_id, room.room_id)


def _apply_redaction(room: Room, rv: RoomVersion, event: Event, pdu: JsonDict) -> None:
    """Mark the target redacted when the redaction may apply (room versions: "Handling
    redactions"); the stored PDU stays as signed, readers serve the pruned form. A
    redaction whose target is not here yet waits (``Event.redacts``) until it arrives."""
    target = Event.objects.filter(event_id=event.redacts, room=room).first()
    if target is None or target.redacted_by is not None:
        return
    if should_apply_redaction(pdu, json.loads(target.json), current_power_levels(room)):
        Event.objects.filter(pk=target.pk).update(redacted_by=event.event_id)
        if target.type in SEARCH_KEYS:  # its text goes with its content
            _execute(f"DELETE FROM {SEARCH_TABLE} WHERE event_id = %s", [target.pk])
        if target.type == EventTypes.MEMBER:
            # The membership row copies the profile of its event: it goes with the content.
            RoomMembership.objects.filter(room=room, event_id=target.event_id).update(
                displayname=None, avatar_url=None
            )
            if target.state_key is not None:
                user_directory.refresh_users([target.state_key])


def _apply_waiting_redactions(room: Room, rv: RoomVersion, event: Event) -> None:
    """A redaction that arrived before its target applies now that the target is here."""
    waiting = (
        Event.objects.filter(
            room=room,
            redacts=event.event_id,
            rejected_reason__isnull=True,
            soft_failed=False,
            outlier=False,
        )
        .order_by("stream_ordering")
        .first()
    )
    if waiting is not None:
        _apply_redaction(room, rv, waiting, json.loads(waiting.json))


def _notify_local_members(room: Room, event: Event, pdu: JsonDict) -> None:
    """Evaluate the event's push rules for the room's local users (in this transaction:
    their notifications commit with the event), and after commit wake them (and the user
    whose membership changed)."""
    do_evaluate_event(room, event, pdu, lambda: current_power_levels(room))
    changed = pdu.get("state_key") if pdu["type"] == EventTypes.MEMBER else None

    def wake() -> None:
        members = {row[0] for row in room_members(room).local}  # read by the evaluation
        if isinstance(changed, str) and changed.endswith(f":{settings.MATRIXHS_SERVER_NAME}"):
            members.add(changed)
        notify_users(members)

    transaction.on_commit(wake)


# --- Events from other servers ------------------------------------------------------------
#
# The federation layer first does what needs the network (signatures checked with the
# origin's keys, content hashes, missing auth and prev events fetched), then hands each
# event here. Everything below runs in one transaction under the room's lock and uses only
# the database and the protocol core: steps 4 to 6 of the server-server API's "Checks
# performed on receipt of a PDU", the state before the event (resolved over its prev
# events), the new current state (resolved over the forward extremities).


class StoredEvents:
    """The room's stored events, for state resolution and auth chains (an EventStore)."""

    def __init__(self, room: Room) -> None:
        self.room = room

    def get_events(self, event_ids: Collection[str]) -> Mapping[str, JsonDict]:
        known = Event.objects.filter(room=self.room, event_id__in=set(event_ids))
        return load_pdus(known.values_list("event_id", flat=True))

    def get_rejected(self, event_ids: Collection[str]) -> Collection[str]:
        return set(
            Event.objects.filter(
                room=self.room, event_id__in=set(event_ids), rejected_reason__isnull=False
            ).values_list("event_id", flat=True)
        )


@dataclass(frozen=True)
class Outcome:
    """What became of an event from another server."""

    event_id: str
    rejected_reason: str | None = None
    soft_failed: bool = False
    already_known: bool = False

    @property
    def accepted(self) -> bool:
        return self.rejected_reason is None


def known_event_ids(event_ids: Iterable[str]) -> set[str]:
    """Which of these events are stored (in the timeline or as outliers)."""
    wanted = set(event_ids)
    if not wanted:
        return set()
    return set(Event.objects.filter(event_id__in=wanted).values_list("event_id", flat=True))


def events_with_state(room: Room, event_ids: Iterable[str]) -> set[str]:
    """Which of these events are stored in the room with a known state (not outliers)."""
    return set(
        Event.objects.filter(
            room=room, event_id__in=set(event_ids), outlier=False, state_group__isnull=False
        ).values_list("event_id", flat=True)
    )


def persist_outliers(room_id: str, events: Sequence[tuple[str, JsonDict]]) -> dict[str, Outcome]:
    """Store events outside the timeline: auth chains, the state a join brought.

    They get no stream position and no state and are never served. Each is checked with
    its own auth events (given earlier in ``events`` or stored before), so ``events``
    must come auth events first; one that fails is stored as rejected. Events already
    stored are left as they are.

    Raises:
        NotFound: the room is not known here.
    """
    with transaction.atomic():
        room = lock_room(room_id)
        rv = get_room_version(room.room_version)
        stored = known_event_ids(event_id for event_id, _ in events)
        outcomes: dict[str, Outcome] = {}
        batch: dict[str, JsonDict] = {}
        rejected: set[str] = set()
        for event_id, pdu in events:
            if event_id in stored or event_id in outcomes:
                outcomes.setdefault(event_id, Outcome(event_id, already_known=True))
                continue
            reason = _auth_with_own_auth_events(room, rv, pdu, batch, rejected)
            batch[event_id] = pdu
            if reason is not None:
                rejected.add(event_id)
            row = _event_row(
                room, rv, event_id, pdu, depth=pdu["depth"], outlier=True, rejected_reason=reason
            )
            _insert_event(
                row,
                pdu,
                prev_event_ids(pdu),
                auth_event_ids(pdu, rv, include_create=False),
                extremity=False,
            )
            outcomes[event_id] = Outcome(event_id, rejected_reason=reason)
        return outcomes


def _auth_with_own_auth_events(
    room: Room,
    rv: RoomVersion,
    pdu: JsonDict,
    batch: Mapping[str, JsonDict],
    batch_rejected: set[str],
) -> str | None:
    """Step 4: None when the event passes the auth rules with its own auth events, else
    why not. ``batch`` holds events of the same call, not stored yet."""
    if pdu.get("type") == EventTypes.CREATE:
        return _reason(lambda: recheck_auth(pdu, {}, rv))
    listed = auth_event_ids(pdu, rv, include_create=False)
    wanted = auth_event_ids(pdu, rv)
    found = {e: batch[e] for e in wanted if e in batch}
    found.update(load_pdus(set(wanted) - found.keys()) if set(wanted) - found.keys() else {})
    missing = sorted(e for e in wanted if e not in found)
    if missing:
        return f"unknown auth events: {', '.join(missing[:3])}"
    stored = set(wanted) - batch.keys()
    if batch_rejected & set(wanted) or StoredEvents(room).get_rejected(stored):
        return "an auth event was rejected"  # rule 2.3

    def check() -> None:
        auth_map = dict(check_auth_events_list(pdu, [found[e] for e in listed], rv))
        if rv.room_id_from_create_event:
            auth_map[CREATE_KEY] = found[create_event_id_for_room(room.room_id)]
        recheck_auth(pdu, auth_map, rv)

    return _reason(check)


def _reason(check: Callable[[], None]) -> str | None:
    try:
        check()
    except EventRejected as exc:
        return exc.reason
    return None


def state_before(room: Room, pdu: JsonDict) -> StateMap | None:
    """The state before an event: its prev event's state, or the resolution of its prev
    events' states. None when a prev event is unknown or an outlier (the caller then asks
    the origin for the state at the event)."""
    prevs = set(prev_event_ids(pdu))
    groups = dict(
        Event.objects.filter(
            room=room, event_id__in=prevs, outlier=False, state_group__isnull=False
        ).values_list("event_id", "state_group_id")
    )
    if not prevs or len(groups) < len(prevs):
        return None
    return _resolve(room, list(states_of_groups(set(groups.values())).values()))


def resolve_states(room: Room, state_sets: list[StateMap]) -> StateMap:
    """The resolution of several states of the room (state resolution of its version)."""
    return _resolve(room, state_sets)


def _resolve(room: Room, state_sets: list[StateMap]) -> StateMap:
    if len(state_sets) == 1:
        return dict(state_sets[0])
    rv = get_room_version(room.room_version)
    return resolve_state(rv, state_sets, None, StoredEvents(room))


def persist_federated_event(
    room_id: str,
    event_id: str,
    pdu: JsonDict,
    state: StateMap | None = None,
    backfilled: bool = False,
    relay_except: str | None = None,
    replace_extremities: bool = False,
    gap: bool = False,
) -> Outcome:
    """Store a verified event from another server in the room's timeline.

    The caller has checked its format, signatures and content hash, and stored its auth
    events (as outliers when they were new) and what it could of its prev events.
    ``state`` is the state before the event as its origin reported it, for when its prev
    events are not all here.

    The event is rejected when it fails the auth rules with its auth events or with the
    state before it, and soft-failed when it fails them with the room's current state.
    Rejected and soft-failed events are stored, never served. A ``backfilled`` event is
    history from before what we had: it gets a position below every live one and changes
    neither the current state nor the forward extremities.

    ``relay_except``: this server passes the event on to every other server in the room
    but that one (a join, leave or knock it accepted for ``relay_except``, or "" for an
    event of ours built through another server, such as an invite).
    ``replace_extremities``: the event is our way back into the room (a join through
    send_join): whatever we had of the room before is history, the event is its tip.
    ``gap``: some of its prev events are missing here for good (``state`` came from its
    origin): a :class:`TimelineGap` before it is recorded for /sync.

    Raises:
        NotFound: the room is not known here.
        StateUnknown: no ``state`` was given and the prev events are not all here.
    """
    with transaction.atomic():
        room = lock_room(room_id)
        stored = Event.objects.filter(event_id=event_id).values_list("outlier", flat=True)
        if any(not outlier for outlier in stored):
            return Outcome(event_id, already_known=True)
        rv = get_room_version(room.room_version)
        before = state if state is not None else state_before(room, pdu)
        if before is None:
            raise StateUnknown(event_id)
        reason = _auth_with_own_auth_events(room, rv, pdu, {}, set())
        if reason is None:
            reason = _auth_with_state(rv, pdu, before)
        soft_failed = False
        if reason is None and not backfilled and not replace_extremities:
            current = current_state_ids(room, auth_types_for_event(pdu, rv) | {CREATE_KEY})
            soft_failed = _auth_with_state(rv, pdu, current) is not None
        if replace_extremities and reason is None:
            ForwardExtremity.objects.filter(room=room).delete()
            room.current_state_group_id = None  # all of the state comes anew
        event = _store_remote(room, rv, event_id, pdu, before, reason, soft_failed, backfilled)
        live = event.stream_ordering is not None and not backfilled
        if live and gap:
            TimelineGap.objects.create(
                room=room, event=event, stream_ordering=event.stream_ordering
            )
        if live:
            _notify_local_members(room, event, pdu)
        if live and relay_except is not None:
            enqueue_pdu(room, event_id, pdu, exclude={relay_except})
        return Outcome(event_id, rejected_reason=reason, soft_failed=soft_failed)


class StateUnknown(Exception):
    """The state before an event cannot be worked out from what is stored."""


def _auth_with_state(rv: RoomVersion, pdu: JsonDict, state: Mapping[StateKey, str]) -> str | None:
    keys = auth_types_for_event(pdu, rv) | {CREATE_KEY}
    wanted = {key: state[key] for key in keys if key in state}
    pdus = load_pdus(wanted.values())
    auth_map = {key: pdus[eid] for key, eid in wanted.items() if eid in pdus}
    return _reason(lambda: recheck_auth(pdu, auth_map, rv))


def _store_remote(
    room: Room,
    rv: RoomVersion,
    event_id: str,
    pdu: JsonDict,
    before: StateMap,
    rejected_reason: str | None,
    soft_failed: bool,
    backfilled: bool,
) -> Event:
    prevs = prev_event_ids(pdu)
    group_before = _group_for_state(room, before, prevs)
    key = state_key_tuple(pdu)
    group_after = group_before
    if key is not None and rejected_reason is None:
        group_after = new_state_group(room, group_before, {key: event_id})
    live = rejected_reason is None and not soft_failed
    old_extremities = set(
        ForwardExtremity.objects.filter(room=room).values_list("event_id", flat=True)
    )
    event = _event_row(
        room,
        rv,
        event_id,
        pdu,
        depth=_ordering_depth(room, pdu),
        rejected_reason=rejected_reason,
        soft_failed=soft_failed,
        state_group_before_id=group_before.pk,
        state_group_id=group_after.pk,
        replaces_state=before.get(key) if key is not None else None,
    )
    # An outlier being filled in (it was an auth event, now it is in the timeline).
    Event.objects.filter(event_id=event_id, outlier=True).delete()
    is_new_tip = live and not backfilled and not _has_successor(room, event_id)
    if live and backfilled:
        event.stream_ordering = -next_position(Stream.BACKFILL)
    elif live:
        event.stream_ordering = next_position(Stream.EVENTS)
    _insert_event(
        event, pdu, prevs, auth_event_ids(pdu, rv, include_create=False), extremity=is_new_tip
    )
    if not live:
        return event
    if event.redacts is not None:
        _apply_redaction(room, rv, event, pdu)
    _apply_waiting_redactions(room, rv, event)
    if not backfilled:
        _update_current_state(room, event, pdu, key, old_extremities, group_after)
    return event


def _has_successor(room: Room, event_id: str) -> bool:
    """Whether a stored live event already names this one as a prev event (it fills a gap
    behind the room's latest events, so it is no forward extremity)."""
    return EventEdge.objects.filter(
        prev_event_id=event_id,
        event__room=room,
        event__outlier=False,
        event__rejected_reason__isnull=True,
        event__soft_failed=False,
    ).exists()


def _ordering_depth(room: Room, pdu: JsonDict) -> int:
    """The depth this server orders the event by: its claimed depth, but at most one more
    than its deepest known prev event (or than the room's deepest event when none is
    known), so that a remote server cannot push its events past everything else. The
    room's first timeline event here (our join, from a resident server's template) keeps
    its claimed depth: history backfilled later orders before it."""
    claimed = pdu["depth"] if isinstance(pdu.get("depth"), int) else 0
    prevs = prev_event_ids(pdu)
    deepest = Event.objects.filter(room=room, event_id__in=prevs).aggregate(d=Max("depth"))["d"]
    if deepest is None:
        deepest = Event.objects.filter(room=room, outlier=False).aggregate(d=Max("depth"))["d"]
    if deepest is None:
        return max(0, claimed)
    return max(0, min(claimed, deepest + 1))


def _group_for_state(room: Room, state: StateMap, prev_ids: list[str]) -> StateGroup:
    """A state group holding exactly ``state``: a prev event's group when it matches, a
    delta over it when the state only adds or changes entries, else a full snapshot."""
    base = (
        Event.objects.filter(room=room, event_id__in=prev_ids, state_group__isnull=False)
        .select_related("state_group")
        .first()
    )
    if base is not None and base.state_group is not None:
        base_state = state_of_group(base.state_group_id)
        if base_state == dict(state):
            return base.state_group
        if base_state.keys() <= state.keys():
            delta = {k: v for k, v in state.items() if base_state.get(k) != v}
            return new_state_group(room, base.state_group, delta)
    return new_state_group(room, None, dict(state))


def _update_current_state(
    room: Room,
    event: Event,
    pdu: JsonDict,
    key: StateKey | None,
    old_extremities: set[str],
    group_after: StateGroup,
) -> None:
    """The room's current state after a new live event: the event's own state when it
    follows every previous extremity (the usual case: a delta of at most one entry),
    else the resolution of the states of all forward extremities."""
    if room.current_state_group_id is None:  # a room we just (re)joined: all of its state
        old, new = current_state_ids(room), state_of_group(group_after.pk)
        changed = {k: v for k, v in new.items() if old.get(k) != v}
        _apply_state_delta(room, changed, set(old) - set(new), group_after.pk)
        return
    if old_extremities <= set(prev_event_ids(pdu)):
        if key is not None:
            _apply_state_delta(room, {key: event.event_id}, set(), group_after.pk, [event])
        elif room.current_state_group_id != group_after.pk:
            room.current_state_group_id = group_after.pk
            room.save(update_fields=["current_state_group"])
        return
    tips = dict(
        Event.objects.filter(
            room=room, event_id__in=ForwardExtremity.objects.filter(room=room).values("event_id")
        ).values_list("event_id", "state_group_id")
    )
    groups = {g for g in tips.values() if g is not None}
    states = states_of_groups(groups)
    resolved = _resolve(room, list(states.values())) if states else {}
    current = state_of_group(room.current_state_group_id)
    if resolved == current:
        return
    group = _group_for_state(room, resolved, list(tips))
    changed = {k: v for k, v in resolved.items() if current.get(k) != v}
    _apply_state_delta(room, changed, set(current) - set(resolved), group.pk)


def purge_room(room_id: str) -> bool:
    """Delete every row of a room: events, state, memberships, receipts, aliases (by
    cascade), with its pending outbound PDUs and content reports. For an operator's room
    deletion, once no local user is in it. True if the room was here."""
    from federation.models import OutboundPdu
    from rooms.models import EventReport

    with transaction.atomic():
        OutboundPdu.objects.filter(room_id=room_id).delete()
        EventReport.objects.filter(room_id=room_id).delete()
        deleted, _ = Room.objects.filter(room_id=room_id).delete()
    return bool(deleted)
