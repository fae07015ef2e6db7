"""Sliding sync room results: timelines, required_state, names and heroes, stripped
state, sent only when new or changed on the connection."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Q

from matrixhs.errors import JsonDict
from matrixhs.filters import RoomEventFilter
from matrixhs.protocol.events import EventTypes, StateKey
from matrixhs.tokens import SyncToken
from push.queries import unread_counts
from rooms.models import Event, Room, RoomMembership
from rooms.queries.format import Viewer, format_events
from sync import rooms as data
from sync.connections import ConnectionState, RoomSent
from sync.sliding.lists import RoomEntry
from sync.sliding.request import RoomConfig, SlidingRequest

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
    ignored: frozenset[str] = frozenset(),
) -> tuple[JsonDict, dict[str, RoomSent]]:
    """The rooms section, and what each room's entry now is on the connection."""
    viewer = Viewer(request.user.user_id, request.device_id, ignored)
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
    rooms_out.update(_joined_rooms(request, joined, previous, now, viewer, ignored))
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
    stripped = data.stripped_state([e.room for e, _, _, _ in items], own)
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
    ignored: frozenset[str],
) -> JsonDict:
    if not items:
        return {}
    user_id = request.user.user_id
    membership_events = {
        e.event_id: e
        for e in Event.objects.filter(
            event_id__in=[entry.event_id for entry, _, _, _ in items if entry.membership != "join"]
        )
    }
    # Rooms that share a start and a limit are read in one query (each up to now, or up
    # to the user's leave).
    windows: dict[tuple[int | None, int], list[Room]] = defaultdict(list)
    uppers: dict[int, int] = {}
    for entry, config, _, before in items:
        left = membership_events.get(entry.event_id)
        uppers[entry.room.pk] = (left.stream_ordering if left is not None else None) or now.events
        after = before.position if before is not None else None
        windows[(after, config.timeline_limit)].append(entry.room)
    timelines: dict[int, tuple[list[Event], bool]] = {}
    for (after, limit), rooms in windows.items():
        timelines.update(data.timelines(rooms, after, uppers, limit, RoomEventFilter(), ignored))
    all_events = [e for events, _ in timelines.values() for e in events]
    visible = {e.event_id for e in data.visible(user_id, all_events)}
    formatted = {
        e["event_id"]: e
        for e in format_events([e for e in all_events if e.event_id in visible], viewer)
    }
    groups = _state_groups(items, membership_events)
    maps = data.state_maps(groups.values())
    summaries, members, names = _membership_and_names(items, groups, maps, user_id)
    state_out = _required_state(items, timelines, groups, maps, user_id, viewer)
    previous_events = previous.token.events if previous is not None else None
    unread = unread_counts(
        user_id,
        [entry.room.pk for entry, _, _, _ in items if entry.membership == "join"],
        now.events,
    )
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
        if entry.membership == "join":
            threads = unread.get(entry.room.pk, {})
            room_out["notification_count"] = sum(c[0] for c in threads.values())
            room_out["highlight_count"] = sum(c[1] for c in threads.values())
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


def _state_groups(
    items: list[tuple[RoomEntry, RoomConfig, list[str], RoomSent | None]],
    membership_events: dict[str, Event],
) -> dict[int, int | None]:
    """The state each room is seen in: the current state, or the state at the user's leave
    (kicked, banned: they see the room as it was then)."""
    groups = {}
    for entry, _, _, _ in items:
        left = membership_events.get(entry.event_id)
        groups[entry.room.pk] = (
            entry.room.current_state_group_id
            if entry.membership == "join"
            else (left.state_group_id if left is not None else None)
        )
    return groups


def _membership_and_names(
    items: list[tuple[RoomEntry, RoomConfig, list[str], RoomSent | None]],
    groups: dict[int, int | None],
    maps: dict[int, dict[StateKey, str]],
    user_id: str,
) -> tuple[dict[int, JsonDict], dict[int, list[RoomMembership]], dict[int, dict[str, str]]]:
    """Summaries (counts, heroes), the members heroes are drawn from, and names: now for
    joined rooms, from the state at the leave for the others."""
    joined = [e.room for e, _, _, _ in items if e.membership == "join"]
    left = [e.room for e, _, _, _ in items if e.membership != "join"]
    summaries = data.summaries(joined, user_id)
    members = _member_rows(joined)
    names = data.names_and_avatars(joined)
    if left:
        states = {room.pk: maps.get(groups[room.pk] or -1, {}) for room in left}
        at_leave = data.members_in_states(states)
        summaries.update(
            data.summarise(
                left,
                {pk: [(m.user_id, m.membership) for m in rows] for pk, rows in at_leave.items()},
                user_id,
            )
        )
        for room_pk, rows in at_leave.items():
            members[room_pk] = [m for m in rows if m.membership in ("join", "invite")]
        names.update(data.names_in_states(states))
    return summaries, members, names


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
    groups: dict[int, int | None],
    maps: dict[int, dict[StateKey, str]],
    user_id: str,
    viewer: Viewer,
) -> dict[int, list[JsonDict]]:
    """Initial rooms: the wanted part of the current state (or the state at the leave).
    Rooms sent before: the wanted state that changed since."""
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
