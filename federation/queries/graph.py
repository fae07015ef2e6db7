"""The room graph as other servers may read it: /event, /state, /state_ids, /event_auth,
/backfill and /get_missing_events (server-server API "Retrieving events", "Backfilling
and retrieving missing events").

A server reads a room only when the room's ACL lets it in and it has a user joined to
the room now (or the room is world-readable). Of the events it asks for, it sees those
whose history visibility lets one of its users see them: ``shared`` and
``world_readable`` events always, ``invited`` ones when one of its users was invited or
joined at the event, ``joined`` ones when one was joined. An event it may not see is
sent in its redacted form (backfill, missing events) or not at all (/event).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from matrixhs.errors import Forbidden, JsonDict, NotFound
from matrixhs.protocol.acl import server_allowed
from matrixhs.protocol.events import EventTypes, Membership, prev_event_ids
from matrixhs.protocol.redaction import redact_event
from matrixhs.protocol.room_versions import get_room_version
from rooms.events import current_state_ids, load_pdus
from rooms.models import Event, Room, RoomMembership
from rooms.state import StateMap, state_of_group, states_of_groups

ACL_KEY = (EventTypes.SERVER_ACL, "")
HISTORY_KEY = (EventTypes.HISTORY_VISIBILITY, "")

#: Most events one /backfill or /get_missing_events answers with.
MAX_EVENTS = 100


def acl_allows(room: Room, server_name: str) -> bool:
    """Whether the room's current m.room.server_acl lets ``server_name`` take part."""
    state = current_state_ids(room, [ACL_KEY])
    if not state:
        return True
    acl = load_pdus(state.values()).get(state[ACL_KEY], {}).get("content")
    return server_allowed(acl if isinstance(acl, dict) else {}, server_name)


def _server_in_room(room: Room, server_name: str) -> bool:
    return RoomMembership.objects.filter(
        room=room, membership=Membership.JOIN, user_id__endswith=f":{server_name}"
    ).exists()


def _world_readable(room: Room) -> bool:
    state = current_state_ids(room, [HISTORY_KEY])
    content = load_pdus(state.values()).get(state.get(HISTORY_KEY, ""), {}).get("content", {})
    return content.get("history_visibility") == "world_readable"


def access_room_for_server(room_id: str, origin: str, allow_world_readable: bool = False) -> Room:
    """The room, when ``origin`` may read it.

    Raises:
        NotFound: the room is not known here.
        Forbidden: the ACL denies ``origin``, or it is not in the room.
    """
    room = Room.objects.filter(room_id=room_id).first()
    if room is None:
        raise NotFound("Unknown room")
    if not acl_allows(room, origin):
        raise Forbidden("Server is banned from the room by its ACL")
    if _server_in_room(room, origin):
        return room
    if allow_world_readable and _world_readable(room):
        return room
    raise Forbidden("Your server is not in the room")


def visible_to_server(origin: str, events: Sequence[Event]) -> set[str]:
    """Which of the events (of one room) ``origin``'s users may see, by the history
    visibility at each and their memberships then."""
    if not events:
        return set()
    room = events[0].room
    users = set(
        Event.objects.filter(
            room=room, type=EventTypes.MEMBER, state_key__endswith=f":{origin}"
        ).values_list("state_key", flat=True)
    )
    keys = [HISTORY_KEY, *((EventTypes.MEMBER, user) for user in users)]
    groups = {e.state_group_before_id for e in events if e.state_group_before_id is not None}
    states = states_of_groups(groups, keys)
    pdus = load_pdus({eid for state in states.values() for eid in state.values()})

    def field(event_id: str | None, name: str) -> object:
        return pdus.get(event_id or "", {}).get("content", {}).get(name)

    visible = set()
    for event in events:
        state = states.get(event.state_group_before_id or -1, {})
        visibility = field(state.get(HISTORY_KEY), "history_visibility") or "shared"
        if visibility not in ("invited", "joined"):
            visible.add(event.event_id)
            continue
        memberships = {
            field(event_id, "membership") for key, event_id in state.items() if key != HISTORY_KEY
        }
        if Membership.JOIN in memberships or (
            visibility == "invited" and Membership.INVITE in memberships
        ):
            visible.add(event.event_id)
    return visible


def _served(origin: str, events: list[Event]) -> list[JsonDict]:
    """The events as PDUs for ``origin``: redacted where it may not see them."""
    if not events:
        return []
    rv = get_room_version(events[0].room.room_version)
    visible = visible_to_server(origin, events)
    pdus = load_pdus(e.event_id for e in events)
    return [
        pdus[e.event_id] if e.event_id in visible else redact_event(pdus[e.event_id], rv)
        for e in events
        if e.event_id in pdus
    ]


def _live_events(room: Room, event_ids: Iterable[str]) -> list[Event]:
    """The room's non-rejected events of these IDs (outliers too: they are in the graph)."""
    return list(
        Event.objects.filter(
            room=room, event_id__in=set(event_ids), rejected_reason__isnull=True
        ).select_related("room")
    )


def event_for_server(origin: str, event_id: str) -> JsonDict:
    """GET /event/{eventId}.

    Raises:
        NotFound: unknown, or not one ``origin`` may see.
    """
    event = (
        Event.objects.filter(event_id=event_id, rejected_reason__isnull=True)
        .select_related("room")
        .first()
    )
    if event is None:
        raise NotFound("Unknown event")
    try:
        access_room_for_server(event.room.room_id, origin, allow_world_readable=True)
    except Forbidden as exc:
        raise NotFound("Unknown event") from exc
    if event_id not in visible_to_server(origin, [event]):
        raise NotFound("Unknown event")
    return load_pdus([event_id])[event_id]


def state_before_event(room: Room, event_id: str) -> StateMap:
    """The room's state before one of its (non-outlier) events.

    Raises:
        NotFound: not an event of the room with a known state.
    """
    event = Event.objects.filter(room=room, event_id=event_id, outlier=False).first()
    if event is None or event.state_group_before_id is None:
        raise NotFound("Unknown event")
    return state_of_group(event.state_group_before_id)


def state_ids_at(room: Room, event_id: str) -> tuple[list[str], list[str]]:
    """/state_ids: the state before the event and its auth chain, as event IDs.

    Raises:
        NotFound: not an event of the room with a known state.
    """
    from federation.queries.events import auth_chain_ids

    state = state_before_event(room, event_id)
    state_ids = sorted(set(state.values()))
    chain = auth_chain_ids(room, state_ids)
    return state_ids, sorted(chain - set(state_ids))


def event_auth_for_server(room: Room, event_id: str) -> list[JsonDict]:
    """/event_auth: the event's auth chain.

    Raises:
        NotFound: not an event of the room.
    """
    from federation.queries.events import auth_chain_ids, pdus_in_order

    if not Event.objects.filter(room=room, event_id=event_id).exists():
        raise NotFound("Unknown event")
    return pdus_in_order(auth_chain_ids(room, [event_id]))


def _walk_back(
    room: Room,
    starts: Iterable[str],
    stop: set[str],
    limit: int,
    min_depth: int,
    include_starts: bool,
) -> list[Event]:
    """A breadth-first walk of ``prev_events`` from ``starts``, stopping at ``stop``, at
    ``limit`` events and below ``min_depth``."""
    limit = max(0, min(limit, MAX_EVENTS))
    found: dict[str, Event] = {}
    frontier = [e for e in dict.fromkeys(starts) if e not in stop]
    if include_starts:
        for event in _live_events(room, frontier):
            found[event.event_id] = event
    seen = set(frontier) | stop
    while frontier and len(found) < limit:
        pdus = load_pdus(frontier)
        parents = []
        for event_id in frontier:
            for prev in prev_event_ids(pdus.get(event_id, {})):
                if prev not in seen:
                    seen.add(prev)
                    parents.append(prev)
        rows = {e.event_id: e for e in _live_events(room, parents)}
        frontier = []
        for prev in parents:
            event = rows.get(prev)
            if event is None or event.depth < min_depth:
                continue
            found[prev] = event
            frontier.append(prev)
            if len(found) >= limit:
                break
    return list(found.values())[:limit]


def backfill_for_server(room: Room, origin: str, from_ids: list[str], limit: int) -> list[JsonDict]:
    """GET /backfill: the events ``from_ids`` and those before them, newest first."""
    events = _walk_back(room, from_ids, set(), limit, 0, include_starts=True)
    events.sort(key=lambda e: (e.depth, e.stream_ordering or 0), reverse=True)
    return _served(origin, events)


def missing_events_for_server(
    room: Room, origin: str, earliest: list[str], latest: list[str], limit: int, min_depth: int
) -> list[JsonDict]:
    """POST /get_missing_events: the events before ``latest`` back to ``earliest``,
    oldest first."""
    events = _walk_back(room, latest, set(earliest), limit, min_depth, include_starts=False)
    events.sort(key=lambda e: (e.depth, e.stream_ordering or 0))
    return _served(origin, events)
