"""Sliding sync lists: the user's rooms by recent activity, the list filters and ranges,
and the rooms the lists and subscriptions pick."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Max

from accounts.models import AccountData, User
from matrixhs.errors import JsonDict
from matrixhs.protocol.events import EventTypes
from matrixhs.tokens import SyncToken
from rooms.events import load_pdus
from rooms.models import CurrentStateEvent, Event, Room, RoomMembership
from rooms.queries.visibility import from_ignored
from rooms.state import states_of_groups
from sync import rooms as data
from sync.sliding.request import BUMP_TYPES, RoomConfig, SlidingRequest, parse_room_config

# --- the user's rooms, ordered ---------------------------------------------------------------


@dataclass
class RoomEntry:
    room: Room
    membership: str
    event_id: str
    last_activity: int
    bump_stamp: int


def room_list(
    user: User, now: SyncToken, previously_sent: set[str], ignored: frozenset[str] = frozenset()
) -> list[RoomEntry]:
    """The user's rooms, most recently active first (MSC4186 "Lists"): joined, invited,
    knocked, kicked or banned, and rooms left by themself only if this connection saw them.
    Invites from ``ignored`` users are left out (spec "Ignoring Users")."""
    memberships = data.current_memberships(user.user_id, now.events)
    rooms = [m.room for m in memberships]
    events = Event.objects.filter(room__in=rooms, stream_ordering__lte=now.events)
    if ignored:  # what ignored users send neither wakes a room up nor bumps it
        events = events.exclude(from_ignored(ignored))
    latest = dict(
        events.values("room_id")
        .annotate(last=Max("stream_ordering"))
        .values_list("room_id", "last")
    )
    bumps = dict(
        events.filter(type__in=BUMP_TYPES)
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
        if kind == "invite" and membership.sender in ignored:
            continue
        own = membership.stream_ordering or 0
        activity = latest.get(room.pk, own) if kind == "join" else own
        bump = bumps.get(room.pk, own) if kind == "join" else own
        entries.append(RoomEntry(room, kind, membership.event_id, activity, bump))
    entries.sort(key=lambda e: (-e.last_activity, e.room.room_id))
    return entries


def _room_facts(user: User, entries: list[RoomEntry]) -> dict[int, dict[str, Any]]:
    """What list filters look at: DM flag, encryption, room type, name, space children, tags.
    Rooms the user left are judged by their state at the leave."""
    rooms = [e.room for e in entries]
    facts: dict[int, dict[str, Any]] = {r.pk: {"tags": set()} for r in rooms}
    direct = AccountData.objects.filter(user=user, room_id="", type="m.direct").first()
    dm_rooms = {
        room_id
        for ids in (direct.content.values() if direct and isinstance(direct.content, dict) else [])
        if isinstance(ids, list)
        for room_id in ids
    }
    types = [EventTypes.ENCRYPTION, EventTypes.CREATE, EventTypes.NAME]
    left = {e.event_id: e.room.pk for e in entries if e.membership in ("leave", "ban")}
    state = list(
        CurrentStateEvent.objects.filter(
            room__in=[r for r in rooms if r.pk not in left.values()], type__in=types, state_key=""
        ).values_list("room_id", "type", "event_id")
    )
    if left:
        groups = dict(
            Event.objects.filter(event_id__in=list(left)).values_list("room_id", "state_group_id")
        )
        at_leave = states_of_groups([g for g in groups.values() if g], [(t, "") for t in types])
        state += [
            (room_pk, event_type, event_id)
            for room_pk, group in groups.items()
            for (event_type, _), event_id in at_leave.get(group or -1, {}).items()
        ]
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
    facts = _room_facts(request.user, entries)
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
        room_config = parse_room_config(config, name)
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
