"""State resolution v1 (spec rooms/v1.md "State resolution"), for room version 1.

The resolution *R* starts as the union of the states, less the conflicting events (a
conflict: two states hold different event IDs for the same key; a key some states lack is
not one). Then, in this order:

1. the ``m.room.power_levels`` events of the conflict, by ascending depth then descending
   sha1(event_id): the first goes into *R*; each next one goes in if the authorization
   rules allow it in state *R*, and the first that is not allowed ends the step;
2. the same for ``m.room.join_rules``;
3. the same for ``m.room.member``, one key (one user) at a time;
4. every other conflicted key gets its event of highest depth and lowest sha1(event_id)
   that the rules allow in *R*. The spec leaves open what happens when none is allowed;
   the lowest-ranked one is taken then, as other servers do, so that a key in every
   state never vanishes (a room without its create event would be no room).

The spec warns that this algorithm can reset a room's state to an older one; room
version 2 replaced it. It is here so that version 1 rooms can be created and joined.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from matrixhs.protocol.event_auth import EventRejected, auth_types_for_event, recheck_auth
from matrixhs.protocol.events import JOIN_RULES_KEY, POWER_LEVELS_KEY, EventTypes, StateKey
from matrixhs.protocol.room_versions import RoomVersion

StateMap = Mapping[StateKey, str]
#: Event ID -> event, for the events of the states being resolved.
GetEvents = Callable[[Iterable[str]], Mapping[str, Mapping[str, Any]]]


def separate_v1(
    state_sets: Sequence[StateMap],
) -> tuple[dict[StateKey, str], dict[StateKey, set[str]]]:
    """The unconflicted state, and the conflicting event IDs of each conflicted key."""
    seen: dict[StateKey, set[str]] = {}
    for state in state_sets:
        for key, event_id in state.items():
            seen.setdefault(key, set()).add(event_id)
    unconflicted = {key: next(iter(ids)) for key, ids in seen.items() if len(ids) == 1}
    conflicted = {key: ids for key, ids in seen.items() if len(ids) > 1}
    return unconflicted, conflicted


def _depth(event: Mapping[str, Any]) -> int:
    depth = event.get("depth")
    return depth if isinstance(depth, int) and not isinstance(depth, bool) else 0


def _sha1(event_id: str) -> str:
    return hashlib.sha1(event_id.encode("utf-8")).hexdigest()  # noqa: S324 (the spec's order)


def resolve_state_v1(
    rv: RoomVersion, state_sets: Sequence[StateMap], get_events: GetEvents
) -> dict[StateKey, str]:
    """Resolve a set of room states with state resolution v1.

    Args:
        rv: the room version (version 1).
        state_sets: the states to resolve, each ``(type, state_key) -> event_id``.
        get_events: loads events by ID (unknown ones left out; their events are skipped).

    Returns:
        The resolved state map.
    """
    resolved, conflicted = separate_v1(state_sets)
    if not conflicted:
        return resolved
    events = dict(get_events({eid for ids in conflicted.values() for eid in ids}))
    # Auth checks read R's events: conflicting ones (loaded) and the unconflicted ones
    # their auth types name (loaded now; R gains no other event on the way).
    wanted = {
        resolved[key]
        for eid in events
        for key in auth_types_for_event(events[eid], rv)
        if key in resolved and resolved[key] not in events
    }
    events.update(get_events(wanted))

    def allowed(event_id: str) -> bool:
        event = events[event_id]
        auth_events = {
            key: events[resolved[key]]
            for key in auth_types_for_event(event, rv)
            if key in resolved and resolved[key] in events
        }
        try:
            recheck_auth(event, auth_events, rv)
        except EventRejected:
            return False
        return True

    def known(ids: Iterable[str]) -> list[str]:
        return [eid for eid in ids if eid in events]

    auth_keys = [POWER_LEVELS_KEY, JOIN_RULES_KEY]
    member_keys = sorted(k for k in conflicted if k[0] == EventTypes.MEMBER)
    for key in [k for k in auth_keys if k in conflicted] + member_keys:
        # Ascending depth, then descending sha1(event_id).
        ordered = sorted(known(conflicted[key]), key=_sha1, reverse=True)
        ordered.sort(key=lambda eid: _depth(events[eid]))
        if not ordered:
            continue
        resolved[key] = ordered[0]
        for event_id in ordered[1:]:
            if not allowed(event_id):
                break
            resolved[key] = event_id
    for key in sorted(set(conflicted) - set(auth_keys) - set(member_keys)):
        # Highest depth, then lowest sha1(event_id): the first the rules allow.
        ordered = sorted(known(conflicted[key]), key=_sha1)
        ordered.sort(key=lambda eid: _depth(events[eid]), reverse=True)
        if not ordered:
            continue
        resolved[key] = next((eid for eid in ordered if allowed(eid)), ordered[-1])
    return resolved
