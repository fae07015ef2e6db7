"""Simplified sliding sync (MSC4186), as Element X and matrix-rust-sdk speak it:
POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync?pos=&timeout=

The client names lists (a range over its rooms, most recently active first, narrowed by
filters) and room subscriptions, each with a timeline limit and the state it wants
(``required_state``: ``[type, state_key]`` pairs with ``*``, ``$LAZY`` and ``$ME``).
A room goes down when it was never sent on this connection, or when something happened
in it since it was; extensions carry to-device messages, E2EE data, account data,
receipts and typing. What the connection has been sent is kept per ``pos`` (sync/models.py),
so a client may retry a request with the same ``pos``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Max, Q

from accounts.models import AccountData, User
from e2ee.actions.to_device import delete_to_device_up_to
from e2ee.queries import one_time_key_counts, to_device_messages, unused_fallback_key_types
from matrixhs.errors import BadJson, InvalidParam, JsonDict
from matrixhs.protocol.events import EventTypes, StateKey
from rooms.events import load_pdus
from rooms.models import CurrentStateEvent, Event, Room, RoomMembership
from rooms.queries.format import Viewer, format_events
from sync import rooms as data
from sync.actions import typing_in_rooms
from sync.classic import device_list_delta
from sync.connections import ConnectionState, RoomSent, load_connection, save_connection
from sync.filters import RoomEventFilter
from sync.tokens import SyncToken, current_token

#: Events that move a room up the list, in the clients' eyes (MSC4186 bump_stamp).
BUMP_TYPES = (
    "m.room.create",
    "m.room.message",
    "m.room.encrypted",
    "m.sticker",
    "m.call.invite",
    "m.poll.start",
    "m.beacon_info",
)
MAX_TIMELINE_LIMIT = 1000
MAX_LISTS = 100


@dataclass
class RoomConfig:
    timeline_limit: int = 0
    required_state: set[tuple[str, str]] = field(default_factory=set)

    def merge(self, other: RoomConfig) -> None:
        self.timeline_limit = max(self.timeline_limit, other.timeline_limit)
        self.required_state |= other.required_state

    def key(self) -> str:
        return json.dumps(sorted(self.required_state))


@dataclass
class SlidingRequest:
    user: User
    device_id: str | None
    conn_id: str
    pos: str | None
    lists: dict[str, JsonDict]
    subscriptions: dict[str, RoomConfig]
    extensions: JsonDict


# --- the request ----------------------------------------------------------------------------


def _config(raw: Any, where: str) -> RoomConfig:
    if not isinstance(raw, dict):
        raise BadJson(f"{where} must be an object")
    limit = raw.get("timeline_limit", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise BadJson(f"{where}.timeline_limit must be a non-negative integer")
    required = raw.get("required_state", [])
    if not isinstance(required, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p) for p in required
    ):
        raise BadJson(f"{where}.required_state must be a list of [type, state_key] pairs")
    return RoomConfig(min(limit, MAX_TIMELINE_LIMIT), {(t, k) for t, k in required})


def parse_request(
    user: User, device_id: str | None, query: dict[str, str], body: JsonDict
) -> SlidingRequest:
    """Raises: BadJson / InvalidParam for malformed bodies."""
    lists = body.get("lists", {})
    subscriptions = body.get("room_subscriptions", {})
    extensions = body.get("extensions", {})
    conn_id = body.get("conn_id", "")
    if not isinstance(lists, dict) or len(lists) > MAX_LISTS:
        raise BadJson("lists must be an object of at most 100 lists")
    if not isinstance(subscriptions, dict) or not isinstance(extensions, dict):
        raise BadJson("room_subscriptions and extensions must be objects")
    if not isinstance(conn_id, str):
        raise BadJson("conn_id must be a string")
    for name, config in lists.items():
        _config(config, f"lists.{name}")
        ranges = config.get("ranges")
        if ranges is not None and not (
            isinstance(ranges, list)
            and all(
                isinstance(r, list)
                and len(r) == 2
                and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in r)
                for r in ranges
            )
        ):
            raise BadJson(f"lists.{name}.ranges must be a list of [start, end] pairs")
        if config.get("filters") is not None and not isinstance(config["filters"], dict):
            raise BadJson(f"lists.{name}.filters must be an object")
    return SlidingRequest(
        user=user,
        device_id=device_id,
        conn_id=conn_id,
        pos=query.get("pos"),
        lists=lists,
        subscriptions={
            room_id: _config(c, f"room_subscriptions.{room_id}")
            for room_id, c in subscriptions.items()
        },
        extensions=extensions,
    )


# --- the user's rooms, ordered ---------------------------------------------------------------


@dataclass
class RoomEntry:
    room: Room
    membership: str
    event_id: str
    last_activity: int
    bump_stamp: int


def room_list(user: User, now: SyncToken, previously_sent: set[str]) -> list[RoomEntry]:
    """The user's rooms, most recently active first (MSC4186 "Lists"): joined, invited,
    knocked, kicked or banned, and rooms left by themself only if this connection saw them."""
    memberships = data.current_memberships(user.user_id, now.events)
    rooms = [m.room for m in memberships]
    latest = dict(
        Event.objects.filter(room__in=rooms, stream_ordering__lte=now.events)
        .values("room_id")
        .annotate(last=Max("stream_ordering"))
        .values_list("room_id", "last")
    )
    bumps = dict(
        Event.objects.filter(room__in=rooms, stream_ordering__lte=now.events, type__in=BUMP_TYPES)
        .values("room_id")
        .annotate(last=Max("stream_ordering"))
        .values_list("room_id", "last")
    )
    entries = []
    for membership in memberships:
        room = membership.room
        kind = membership.membership
        if (
            kind == "leave"
            and membership.sender == user.user_id
            and room.room_id not in previously_sent
        ):
            continue
        own = membership.stream_ordering or 0
        activity = latest.get(room.pk, own) if kind == "join" else own
        bump = bumps.get(room.pk, own) if kind == "join" else own
        entries.append(RoomEntry(room, kind, membership.event_id, activity, bump))
    entries.sort(key=lambda e: (-e.last_activity, e.room.room_id))
    return entries


def _room_facts(user: User, rooms: list[Room]) -> dict[int, dict[str, Any]]:
    """What list filters look at: DM flag, encryption, room type, name, space children, tags."""
    facts: dict[int, dict[str, Any]] = {r.pk: {"tags": set()} for r in rooms}
    direct = AccountData.objects.filter(user=user, room_id="", type="m.direct").first()
    dm_rooms = {
        room_id
        for ids in (direct.content.values() if direct and isinstance(direct.content, dict) else [])
        if isinstance(ids, list)
        for room_id in ids
    }
    state = CurrentStateEvent.objects.filter(
        room__in=rooms,
        type__in=[EventTypes.ENCRYPTION, EventTypes.CREATE, EventTypes.NAME],
        state_key="",
    ).values_list("room_id", "type", "event_id")
    pdus = load_pdus(event_id for _, _, event_id in state)
    for room in rooms:
        facts[room.pk]["is_dm"] = room.room_id in dm_rooms
        facts[room.pk]["encrypted"] = False
    for room_pk, event_type, event_id in state:
        content = pdus.get(event_id, {}).get("content", {})
        if event_type == EventTypes.ENCRYPTION:
            facts[room_pk]["encrypted"] = True
        elif event_type == EventTypes.CREATE:
            facts[room_pk]["room_type"] = content.get("type")
        elif event_type == EventTypes.NAME and isinstance(content.get("name"), str):
            facts[room_pk]["name"] = content["name"]
    by_id = {r.room_id: r.pk for r in rooms}
    for room_id, content in AccountData.objects.filter(
        user=user, room_id__in=list(by_id), type="m.tag"
    ).values_list("room_id", "content"):
        tags = content.get("tags") if isinstance(content, dict) else None
        if isinstance(tags, dict):
            facts[by_id[room_id]]["tags"] = set(tags)
    return facts


def _space_children(space_ids: list[str], user_id: str) -> set[str]:
    joined = RoomMembership.objects.filter(
        user_id=user_id, membership="join", room__room_id__in=space_ids
    ).values("room_id")
    return set(
        CurrentStateEvent.objects.filter(room_id__in=joined, type="m.space.child").values_list(
            "state_key", flat=True
        )
    )


def _matches(
    entry: RoomEntry, facts: dict[str, Any], filters: JsonDict, space_children: set[str] | None
) -> bool:
    checks = [
        ("is_dm", lambda v: facts["is_dm"] == v),
        ("is_encrypted", lambda v: facts["encrypted"] == v),
        ("is_invite", lambda v: (entry.membership == "invite") == v),
        ("room_types", lambda v: facts.get("room_type") in v),
        ("not_room_types", lambda v: facts.get("room_type") not in v),
        ("room_name_like", lambda v: str(v).casefold() in (facts.get("name") or "").casefold()),
        ("tags", lambda v: bool(facts["tags"] & set(v))),
        ("not_tags", lambda v: not (facts["tags"] & set(v))),
    ]
    if space_children is not None and entry.room.room_id not in space_children:
        return False
    return all(check(filters[name]) for name, check in checks if filters.get(name) is not None)


def select_rooms(
    request: SlidingRequest, entries: list[RoomEntry]
) -> tuple[dict[str, JsonDict], dict[str, tuple[RoomEntry, RoomConfig, list[str]]]]:
    """List counts, and the rooms the lists' ranges and the subscriptions pick, with their
    combined config and the names of the lists that matched them."""
    facts = _room_facts(request.user, [e.room for e in entries])
    lists_out: dict[str, JsonDict] = {}
    chosen: dict[str, tuple[RoomEntry, RoomConfig, list[str]]] = {}
    for name, config in request.lists.items():
        filters = config.get("filters") or {}
        spaces = filters.get("spaces")
        children = _space_children(spaces, request.user.user_id) if spaces else None
        matching = [e for e in entries if _matches(e, facts[e.room.pk], filters, children)]
        lists_out[name] = {"count": len(matching)}
        ranges = config.get("ranges") or [[0, len(matching) - 1]]
        picked = {i for start, end in ranges for i in range(start, min(end, len(matching) - 1) + 1)}
        room_config = _config(config, name)
        for index in sorted(picked):
            entry = matching[index]
            _choose(chosen, entry, room_config, name)
    by_id = {e.room.room_id: e for e in entries}
    for room_id, room_config in request.subscriptions.items():
        entry = by_id.get(room_id)
        if entry is not None and entry.membership in ("join", "invite", "knock", "leave", "ban"):
            _choose(chosen, entry, room_config, None)
    return lists_out, chosen


def _choose(
    chosen: dict[str, tuple[RoomEntry, RoomConfig, list[str]]],
    entry: RoomEntry,
    config: RoomConfig,
    list_name: str | None,
) -> None:
    room_id = entry.room.room_id
    if room_id not in chosen:
        chosen[room_id] = (entry, RoomConfig(config.timeline_limit, set(config.required_state)), [])
    else:
        chosen[room_id][1].merge(config)
    if list_name is not None:
        chosen[room_id][2].append(list_name)


# --- rooms ----------------------------------------------------------------------------------


def wanted_state(
    state: dict[StateKey, str], config: RoomConfig, user_id: str, lazy_members: set[str]
) -> dict[StateKey, str]:
    """The part of a room's state ``required_state`` asks for."""
    wanted = {(t, user_id if k == "$ME" else k) for t, k in config.required_state}
    lazy = (EventTypes.MEMBER, "$LAZY") in wanted
    everything = ("*", "*") in wanted
    types = {t for t, k in wanted if k == "*"}
    keys = {k for t, k in wanted if t == "*"}
    picked = {}
    for (event_type, state_key), event_id in state.items():
        if (
            lazy
            and event_type == EventTypes.MEMBER
            and state_key not in lazy_members
            and ((event_type, state_key) not in wanted)
        ):
            continue
        if (
            everything
            or (event_type, state_key) in wanted
            or event_type in types
            or state_key in keys
            or (lazy and event_type == EventTypes.MEMBER)
        ):
            picked[(event_type, state_key)] = event_id
    return picked


def build_rooms(
    request: SlidingRequest,
    chosen: dict[str, tuple[RoomEntry, RoomConfig, list[str]]],
    previous: ConnectionState | None,
    now: SyncToken,
) -> tuple[JsonDict, dict[str, RoomSent]]:
    """The rooms section, and what each room's entry now is on the connection."""
    viewer = Viewer(request.user.user_id, request.device_id)
    sent = previous.rooms if previous is not None else {}
    to_send: list[tuple[RoomEntry, RoomConfig, list[str], RoomSent | None]] = []
    for entry, config, lists in chosen.values():
        before = sent.get(entry.room.room_id)
        if (
            before is not None
            and before.config == config.key()
            and before.limit >= config.timeline_limit
        ):
            if entry.last_activity <= before.position:
                continue  # nothing new in this room
            to_send.append((entry, config, lists, before))
        else:
            to_send.append((entry, config, lists, None))  # first time, or a wider config
    rooms_out: JsonDict = {}
    joined = [item for item in to_send if item[0].membership in ("join", "leave", "ban")]
    rooms_out.update(_stripped_rooms([item for item in to_send if item not in joined]))
    rooms_out.update(_joined_rooms(request, joined, previous, now, viewer))
    new_sent = dict(sent)
    for entry, config, _, _ in to_send:
        new_sent[entry.room.room_id] = RoomSent(now.events, config.timeline_limit, config.key())
    return rooms_out, new_sent


def _stripped_rooms(
    items: list[tuple[RoomEntry, RoomConfig, list[str], RoomSent | None]],
) -> JsonDict:
    out: JsonDict = {}
    if not items:
        return out
    own = {e.room.pk: e.event_id for e, _, _, _ in items}
    events = {e.room_id: e for e in Event.objects.filter(event_id__in=own.values())}
    stripped = data.stripped_state([e.room for e, _, _, _ in items], events)
    for entry, _, lists, _ in items:
        room_out: JsonDict = {
            "invite_state": stripped.get(entry.room.pk, []),
            "initial": True,
            "membership": entry.membership,
            "bump_stamp": entry.bump_stamp,
        }
        if lists:
            room_out["lists"] = lists
        out[entry.room.room_id] = room_out
    return out


def _joined_rooms(
    request: SlidingRequest,
    items: list[tuple[RoomEntry, RoomConfig, list[str], RoomSent | None]],
    previous: ConnectionState | None,
    now: SyncToken,
    viewer: Viewer,
) -> JsonDict:
    if not items:
        return {}
    user_id = request.user.user_id
    timelines: dict[int, tuple[list[Event], bool]] = {}
    for entry, config, _, before in items:  # one query per distinct limit and bound
        upper = now.events
        if entry.membership != "join":
            upper = Event.objects.get(event_id=entry.event_id).stream_ordering or now.events
        after = before.position if before is not None else None
        timelines.update(
            data.timelines([entry.room], after, upper, config.timeline_limit, RoomEventFilter())
        )
    all_events = [e for events, _ in timelines.values() for e in events]
    visible = {e.event_id for e in data.visible(user_id, all_events)}
    formatted = {
        e["event_id"]: e
        for e in format_events([e for e in all_events if e.event_id in visible], viewer)
    }
    summaries = data.summaries([e.room for e, _, _, _ in items], user_id)
    members = _member_rows([e.room for e, _, _, _ in items])
    names = data.names_and_avatars([e.room for e, _, _, _ in items])
    state_out = _required_state(items, timelines, user_id, viewer)
    previous_events = previous.token.events if previous is not None else None
    out: JsonDict = {}
    for entry, _config, lists, before in items:
        events, limited = timelines[entry.room.pk]
        timeline = [formatted[e.event_id] for e in events if e.event_id in formatted]
        summary = summaries.get(entry.room.pk, {})
        room_out: JsonDict = {
            "membership": entry.membership,
            "bump_stamp": entry.bump_stamp,
            "joined_count": summary.get("m.joined_member_count", 0),
            "invited_count": summary.get("m.invited_member_count", 0),
            "limited": limited,
            "prev_batch": f"s{(events[0].stream_ordering or 1) - 1}"
            if events
            else f"s{now.events}",
            "num_live": sum(
                1
                for e in events
                if previous_events is not None and (e.stream_ordering or 0) > previous_events
            ),
        }
        if before is None:
            room_out["initial"] = True
        if timeline:
            room_out["timeline"] = timeline
        if state_out.get(entry.room.pk):
            room_out["required_state"] = state_out[entry.room.pk]
        _name_and_heroes(
            room_out, names.get(entry.room.pk, {}), entry.room, user_id, members, before is None
        )
        if lists:
            room_out["lists"] = lists
        out[entry.room.room_id] = room_out
    return out


def _member_rows(rooms: list[Room]) -> dict[int, list[RoomMembership]]:
    rows: dict[int, list[RoomMembership]] = defaultdict(list)
    for row in RoomMembership.objects.filter(
        room__in=rooms, membership__in=("join", "invite")
    ).order_by("user_id"):
        rows[row.room_id].append(row)
    return rows


def _name_and_heroes(
    room_out: JsonDict,
    named: dict[str, str],
    room: Room,
    user_id: str,
    members: dict[int, list[RoomMembership]],
    initial: bool,
) -> None:
    room_out.update(named)
    if "name" not in named and initial:
        room_out["heroes"] = [
            {
                k: v
                for k, v in (
                    ("user_id", m.user_id),
                    ("displayname", m.displayname),
                    ("avatar_url", m.avatar_url),
                )
                if v is not None
            }
            for m in members.get(room.pk, [])
            if m.user_id != user_id
        ][:5]


def _required_state(
    items: list[tuple[RoomEntry, RoomConfig, list[str], RoomSent | None]],
    timelines: dict[int, tuple[list[Event], bool]],
    user_id: str,
    viewer: Viewer,
) -> dict[int, list[JsonDict]]:
    """Initial rooms: the wanted part of the current state (or the state at the leave).
    Rooms sent before: the wanted state that changed since."""
    groups = {}
    for entry, _, _, _ in items:
        if entry.membership == "join":
            groups[entry.room.pk] = entry.room.current_state_group_id
        else:
            leave = Event.objects.filter(event_id=entry.event_id).first()
            groups[entry.room.pk] = leave.state_group_id if leave else None
    maps = data.state_maps(groups.values())
    changed_since = _state_changed_since(
        {e.room.pk: b.position for e, _, _, b in items if b is not None}
    )
    chosen_ids: dict[int, set[str]] = {}
    for entry, config, _, before in items:
        state = maps.get(groups[entry.room.pk] or -1, {})
        events = timelines[entry.room.pk][0]
        lazy = {k for _, k in data.lazy_member_keys(events, user_id)}
        picked = wanted_state(state, config, user_id, lazy)
        ids = set(picked.values())
        if before is not None:
            ids &= changed_since.get(entry.room.pk, set()) | {
                v for (t, k), v in picked.items() if t == EventTypes.MEMBER and k in lazy
            }
        chosen_ids[entry.room.pk] = ids - {e.event_id for e in events}
    formatted = data.state_events({i for ids in chosen_ids.values() for i in ids}, viewer)
    return {
        pk: [formatted[i] for i in sorted(ids) if i in formatted] for pk, ids in chosen_ids.items()
    }


def _state_changed_since(positions: dict[int, int]) -> dict[int, set[str]]:
    if not positions:
        return {}
    condition = Q(pk__in=[])
    for room_pk, position in positions.items():
        condition |= Q(room_id=room_pk, stream_ordering__gt=position)
    changed: dict[int, set[str]] = defaultdict(set)
    for room_pk, event_id in Event.objects.filter(condition, state_key__isnull=False).values_list(
        "room_id", "event_id"
    ):
        changed[room_pk].add(event_id)
    return changed


# --- extensions -----------------------------------------------------------------------------


def _enabled(extensions: JsonDict, name: str) -> JsonDict | None:
    config = extensions.get(name)
    if isinstance(config, dict) and config.get("enabled") is True:
        return config
    return None


def build_extensions(
    request: SlidingRequest,
    previous: ConnectionState | None,
    now: SyncToken,
    rooms: list[Room],
    initial_rooms: set[str],
) -> tuple[JsonDict, bool, int | None]:
    """The extensions section, whether it holds news, and the next typing expiry."""
    since = previous.token if previous is not None else None
    out: JsonDict = {}
    news = False
    expiry = None
    if (config := _enabled(request.extensions, "to_device")) is not None and request.device_id:
        raw = config.get("since")
        if raw is not None and not (isinstance(raw, str) and raw.isdigit()):
            raise InvalidParam("extensions.to_device.since must be a stream position")
        after = int(raw) if raw is not None else (since.to_device if since else 0)
        if after:
            delete_to_device_up_to(request.user, request.device_id, after)
        events, position = to_device_messages(
            request.user, request.device_id, after, int(config.get("limit") or 100), now.to_device
        )
        out["to_device"] = {"next_batch": str(position), "events": events}
        news |= bool(events)
    if _enabled(request.extensions, "e2ee") is not None and request.device_id:
        e2ee: JsonDict = {
            "device_one_time_keys_count": one_time_key_counts(request.user, request.device_id),
            "device_unused_fallback_key_types": unused_fallback_key_types(
                request.user, request.device_id
            ),
        }
        lists = device_list_delta(request.user.user_id, since, now)
        if lists:
            e2ee["device_lists"] = {
                "changed": lists.get("changed", []),
                "left": lists.get("left", []),
            }
            news = True
        out["e2ee"] = e2ee
    if _enabled(request.extensions, "account_data") is not None:
        out["account_data"], changed = _account_data(request.user, rooms, since, now)
        news |= changed
    if _enabled(request.extensions, "receipts") is not None:
        receipts = data.receipts(
            rooms, request.user.user_id, since.receipts if since else None, now.receipts
        )
        by_pk = {r.pk: r.room_id for r in rooms}
        out["receipts"] = {
            "rooms": {
                by_pk[pk]: {"type": "m.receipt", "content": content}
                for pk, content in receipts.items()
            }
        }
        news |= bool(receipts)
    if _enabled(request.extensions, "typing") is not None:
        typing_out, expiry = _typing(rooms, since, now, initial_rooms)
        out["typing"] = {"rooms": typing_out}
        news |= bool(typing_out)
    return out, news, expiry


def _account_data(
    user: User, rooms: list[Room], since: SyncToken | None, now: SyncToken
) -> tuple[JsonDict, bool]:
    query = AccountData.objects.filter(user=user, stream_id__lte=now.account_data).filter(
        Q(room_id="") | Q(room_id__in=[r.room_id for r in rooms])
    )
    if since is not None:
        query = query.filter(stream_id__gt=since.account_data)
    global_events: list[JsonDict] = []
    per_room: dict[str, list[JsonDict]] = defaultdict(list)
    for room_id, data_type, content in query.values_list("room_id", "type", "content"):
        event = {"type": data_type, "content": content}
        (per_room[room_id] if room_id else global_events).append(event)
    if since is None and not any(e["type"] == "m.push_rules" for e in global_events):
        from sync.classic import _default_push_rules

        global_events.extend(_default_push_rules(user))
    changed = bool(global_events or per_room) and since is not None
    return {"global": global_events, "rooms": dict(per_room)}, changed


def _typing(
    rooms: list[Room], since: SyncToken | None, now: SyncToken, initial_rooms: set[str]
) -> tuple[JsonDict, int | None]:
    typing = typing_in_rooms([r.room_id for r in rooms])
    out: JsonDict = {}
    expiry = None
    for room_id, state in typing.items():
        fresh = since is None or room_id in initial_rooms or since.typing > now.typing
        if fresh and not state.users:
            continue
        if fresh or state.position > since.typing:  # type: ignore[union-attr]
            out[room_id] = {"type": "m.typing", "content": {"user_ids": state.users}}
        if state.next_expiry_ms is not None:
            expiry = min(expiry or state.next_expiry_ms, state.next_expiry_ms)
    return out, expiry


# --- one response ---------------------------------------------------------------------------


def sliding_sync(request: SlidingRequest) -> tuple[JsonDict, bool, int | None]:
    """One response: ``(body, has_news, wake_at_ms)``. Writes the connection's new position.

    Raises:
        MatrixError: 400 M_UNKNOWN_POS when ``pos`` names no position of this connection.
    """
    previous = load_connection(request.user, request.device_id or "", request.conn_id, request.pos)
    now = current_token()
    entries = room_list(request.user, now, set(previous.rooms) if previous else set())
    lists, chosen = select_rooms(request, entries)
    rooms_out, sent = build_rooms(request, chosen, previous, now)
    matched_rooms = [entry.room for entry, _, _ in chosen.values()]
    initial = {room_id for room_id, room in rooms_out.items() if room.get("initial")}
    extensions, news, expiry = build_extensions(request, previous, now, matched_rooms, initial)
    has_news = previous is None or bool(rooms_out) or news
    if has_news or request.pos is None:
        pos = save_connection(
            request.user,
            request.device_id or "",
            request.conn_id,
            request.pos,
            ConnectionState(now, sent),
        )
    else:
        pos = request.pos  # nothing was sent: the client may carry on from where it was
    body: JsonDict = {"pos": pos, "lists": lists, "rooms": rooms_out, "extensions": extensions}
    return body, has_news, expiry
