"""State resolution v2 and v2.1 (spec room versions 2-11 "State resolution"; v12 changes).

v2.1 (room version 12) differs in two places: the iterative auth checks of the power events
start from an empty state map instead of the unconflicted state map, and the full
conflicted set also holds the *conflicted state subgraph*.

Events come from an ``EventStore``; auth chains are walked through the events'
``auth_events`` (plus, in v12, the create event that the room ID implies).
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol

from matrixhs.protocol.event_auth import EventRejected, auth_types_for_event, recheck_auth
from matrixhs.protocol.events import (
    CREATE_KEY,
    JOIN_RULES_KEY,
    POWER_LEVELS_KEY,
    EventTypes,
    JsonDict,
    Membership,
    StateKey,
    auth_event_ids,
    membership_of,
    state_key_tuple,
)
from matrixhs.protocol.power_levels import PowerLevel, PowerLevels
from matrixhs.protocol.room_versions import RoomVersion, StateResolution
from matrixhs.protocol.state_res_v1 import resolve_state_v1

StateMap = Mapping[StateKey, str]


class EventStore(Protocol):
    """Where state resolution reads events from. Implementations must only return events
    of the room being resolved.
    """

    def get_events(self, event_ids: Collection[str]) -> Mapping[str, Mapping[str, Any]]:
        """The events with these IDs that are known (rejected ones included); unknown IDs
        are left out."""
        ...

    def get_rejected(self, event_ids: Collection[str]) -> Collection[str]:
        """Which of these events were rejected."""
        ...


@dataclasses.dataclass
class MemoryEventStore:
    """An ``EventStore`` over a dict, for tests and in-flight events."""

    events: dict[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    rejected: set[str] = dataclasses.field(default_factory=set)

    def get_events(self, event_ids: Collection[str]) -> Mapping[str, Mapping[str, Any]]:
        """See ``EventStore.get_events``."""
        return {eid: self.events[eid] for eid in event_ids if eid in self.events}

    def get_rejected(self, event_ids: Collection[str]) -> Collection[str]:
        """See ``EventStore.get_rejected``."""
        return {eid for eid in event_ids if eid in self.rejected}


def resolve_state(
    rv: RoomVersion,
    state_sets: Sequence[StateMap],
    event_map: Mapping[str, Mapping[str, Any]] | None,
    store: EventStore,
) -> dict[StateKey, str]:
    """Resolve state with the room version's algorithm (v1 for room version 1, else v2
    or v2.1)."""
    if rv.state_res is StateResolution.V1:

        def get_events(event_ids: Iterable[str]) -> Mapping[str, Mapping[str, Any]]:
            ids = set(event_ids)
            at_hand = {eid: event_map[eid] for eid in ids if event_map and eid in event_map}
            return {**store.get_events(ids - at_hand.keys()), **at_hand}

        return resolve_state_v1(rv, state_sets, get_events)
    return resolve_state_v2(rv, state_sets, event_map, store)


def resolve_state_v2(
    rv: RoomVersion,
    state_sets: Sequence[StateMap],
    event_map: Mapping[str, Mapping[str, Any]] | None,
    store: EventStore,
) -> dict[StateKey, str]:
    """Resolve a set of room states with state resolution v2 (or v2.1 for v12 rooms).

    Args:
        rv: the room version (its ``state_res`` picks v2 or v2.1).
        state_sets: the states to resolve, each ``(type, state_key) -> event_id``.
        event_map: events at hand (e.g. not yet persisted), looked up before the store.
        store: where the other events come from.

    Returns:
        The resolved state map.

    Raises:
        ValueError: the room version uses state resolution v1 (see ``resolve_state``).
    """
    if rv.state_res is StateResolution.V1:
        raise ValueError("room version 1 resolves state with v1: use resolve_state")
    unconflicted, conflicted = _separate(state_sets)
    if not conflicted:
        return dict(unconflicted)
    graph = _AuthGraph(rv, event_map, store)
    conflicted_ids = set().union(*conflicted.values())
    full_set = conflicted_ids | graph.auth_difference(state_sets)
    if rv.state_res is StateResolution.V2_1:
        full_set |= graph.conflicted_subgraph(conflicted_ids)
    graph.fetch(full_set)
    full_set = {eid for eid in full_set if graph.get(eid) is not None}

    # Step 1: power events and their auth chain within the full conflicted set.
    power_ids = graph.power_events_closure(full_set)
    sorted_power = graph.reverse_topological_power_order(power_ids)
    # Step 2 (v2.1: starting from an empty state map).
    initial: dict[StateKey, str] = {}
    if rv.state_res is StateResolution.V2:
        initial = dict(unconflicted)
    partial = graph.iterative_auth_checks(sorted_power, initial)
    # Steps 3 and 4: the other events, in mainline order of the resolved power levels.
    others = full_set - set(sorted_power)
    sorted_others = graph.mainline_order(others, partial.get(POWER_LEVELS_KEY))
    resolved = graph.iterative_auth_checks(sorted_others, partial)
    # Step 5
    resolved.update(unconflicted)
    return resolved


def _separate(
    state_sets: Sequence[StateMap],
) -> tuple[dict[StateKey, str], dict[StateKey, set[str]]]:
    """Split into the unconflicted state map and the conflicted event IDs per key.

    A key missing from some state set is conflicted.
    """
    unconflicted: dict[StateKey, str] = {}
    conflicted: dict[StateKey, set[str]] = {}
    keys = set().union(*(state_set.keys() for state_set in state_sets))
    for key in keys:
        values = [state_set.get(key) for state_set in state_sets]
        distinct = set(values)
        if len(distinct) == 1 and values[0] is not None:
            unconflicted[key] = values[0]
        else:
            conflicted[key] = {value for value in distinct if value is not None}
    return unconflicted, conflicted


def is_power_event(event: Mapping[str, Any]) -> bool:
    """A power event: power levels, join rules, or a kick/ban (a leave or ban whose sender
    is not its target).

    The create event is counted too, as Synapse and ruma do; it only matters if the create
    event is itself in the full conflicted set, where it then sorts first either way.
    """
    key = state_key_tuple(event)
    if key in (POWER_LEVELS_KEY, JOIN_RULES_KEY, CREATE_KEY):
        return True
    is_kick_or_ban = (
        key is not None
        and key[0] == EventTypes.MEMBER
        and membership_of(event) in (Membership.LEAVE, Membership.BAN)
    )
    return is_kick_or_ban and key is not None and event.get("sender") != key[1]


class _AuthGraph:
    """The auth graph of one resolution, with events fetched from the store as needed."""

    def __init__(
        self,
        rv: RoomVersion,
        event_map: Mapping[str, Mapping[str, Any]] | None,
        store: EventStore,
    ) -> None:
        self.rv = rv
        self.store = store
        self.events: dict[str, Mapping[str, Any] | None] = dict(event_map or {})
        self.rejected: dict[str, bool] = {}

    # -- access ------------------------------------------------------------------------

    def fetch(self, event_ids: Iterable[str]) -> None:
        """Load the events not loaded yet, in one store call."""
        missing = [eid for eid in event_ids if eid not in self.events]
        if missing:
            found = self.store.get_events(missing)
            for eid in missing:
                self.events[eid] = found.get(eid)

    def get(self, event_id: str) -> Mapping[str, Any] | None:
        """The event, or ``None`` if the store does not know it."""
        self.fetch([event_id])
        return self.events[event_id]

    def auth_ids(self, event_id: str) -> list[str]:
        """The event's auth event IDs (v12: plus the create event)."""
        event = self.get(event_id)
        return auth_event_ids(event, self.rv) if event is not None else []

    def load_rejected(self, event_ids: Iterable[str]) -> None:
        """Learn which of these events are rejected, in one store call."""
        unknown = [eid for eid in event_ids if eid not in self.rejected]
        if unknown:
            rejected = set(self.store.get_rejected(unknown))
            self.rejected.update((eid, eid in rejected) for eid in unknown)

    def is_rejected(self, event_id: str) -> bool:
        """Whether the store marked the event rejected."""
        self.load_rejected([event_id])
        return self.rejected[event_id]

    # -- sets ----------------------------------------------------------------------------

    def reachable(self, start: Iterable[str]) -> set[str]:
        """``start`` and every event reachable from it through ``auth_events``."""
        seen: set[str] = set()
        frontier = list(start)
        while frontier:
            self.fetch(frontier)
            next_frontier: list[str] = []
            for eid in frontier:
                if eid not in seen:
                    seen.add(eid)
                    next_frontier.extend(a for a in self.auth_ids(eid) if a not in seen)
            frontier = next_frontier
        return seen

    def auth_difference(self, state_sets: Sequence[StateMap]) -> set[str]:
        """The union minus the intersection of the state sets' full auth chains.

        Each state set's chain includes the state events themselves, as Synapse's and
        ruma's do: an event in every state set is then never in the difference.
        """
        chains = [self.reachable(state_set.values()) for state_set in state_sets]
        return set().union(*chains) - set(chains[0]).intersection(*chains[1:])

    def conflicted_subgraph(self, conflicted: set[str]) -> set[str]:
        """v2.1: the events on an ``auth_events`` path between two conflicted events
        (endpoints included)."""
        below = self.reachable(conflicted)
        reaches: dict[str, bool] = {}
        for root in below:
            stack: list[tuple[str, bool]] = [(root, False)]
            in_progress: set[str] = set()
            while stack:
                eid, expanded = stack.pop()
                if eid in reaches:
                    continue
                if expanded:
                    children = self.auth_ids(eid)
                    reaches[eid] = eid in conflicted or any(reaches.get(a, False) for a in children)
                elif eid not in in_progress:
                    in_progress.add(eid)
                    stack.append((eid, True))
                    stack.extend((a, False) for a in self.auth_ids(eid) if a not in reaches)
        return {eid for eid in below if reaches.get(eid)}

    def power_events_closure(self, full_set: set[str]) -> set[str]:
        """Step 1: the power events of the full conflicted set, with the events of their
        auth chains that are in the full conflicted set.

        The walk goes through full-conflicted-set events only, as Synapse's and ruma's do.
        """
        closure: set[str] = set()
        stack = [eid for eid in full_set if is_power_event(self.events[eid] or {})]
        while stack:
            eid = stack.pop()
            if eid not in closure:
                closure.add(eid)
                stack.extend(a for a in self.auth_ids(eid) if a in full_set)
        return closure

    # -- orderings -----------------------------------------------------------------------

    def sender_power_level(self, event_id: str) -> PowerLevel:
        """The sender's power level according to the event's own auth events."""
        event = self.get(event_id) or {}
        by_key: dict[StateKey, Mapping[str, Any]] = {}
        for aid in self.auth_ids(event_id):
            auth_event = self.get(aid)
            key = state_key_tuple(auth_event) if auth_event is not None else None
            if auth_event is not None and key is not None:
                by_key[key] = auth_event
        levels = PowerLevels.from_state(
            by_key.get(POWER_LEVELS_KEY), by_key.get(CREATE_KEY), self.rv
        )
        return levels.user_level(str(event.get("sender")))

    def reverse_topological_power_order(self, event_ids: set[str]) -> list[str]:
        """Kahn's algorithm over the auth edges within ``event_ids``, taking at each step the
        smallest ready event by (higher sender power level, earlier origin_server_ts,
        smaller event ID)."""
        pending = {eid: {a for a in self.auth_ids(eid) if a in event_ids} for eid in event_ids}
        dependants: dict[str, list[str]] = {eid: [] for eid in event_ids}
        for eid, auth_ids in pending.items():
            for aid in auth_ids:
                dependants[aid].append(eid)
        keys = {
            eid: (-self.sender_power_level(eid), _origin_ts(self.get(eid)), eid)
            for eid in event_ids
        }
        ready = [keys[eid] for eid, auth_ids in pending.items() if not auth_ids]
        heapq.heapify(ready)
        order = []
        while ready:
            eid = heapq.heappop(ready)[2]
            order.append(eid)
            for dependant in dependants[eid]:
                pending[dependant].discard(eid)
                if not pending[dependant]:
                    heapq.heappush(ready, keys[dependant])
        return order

    def _power_levels_auth_event(self, event_id: str) -> str | None:
        for aid in self.auth_ids(event_id):
            auth_event = self.get(aid)
            if auth_event is not None and state_key_tuple(auth_event) == POWER_LEVELS_KEY:
                return aid
        return None

    def mainline_order(self, event_ids: set[str], power_levels_id: str | None) -> list[str]:
        """Sort by mainline position (earlier power levels first), then origin_server_ts,
        then event ID."""
        mainline: dict[str, int] = {}
        current = power_levels_id
        while current is not None and current not in mainline:
            mainline[current] = len(mainline)
            current = self._power_levels_auth_event(current)

        def position(event_id: str) -> float:
            # The mainline position: the index in the mainline of the first power levels
            # event met walking up from the event's own power levels auth event.
            seen: set[str] = set()
            current = self._power_levels_auth_event(event_id)
            while current is not None and current not in seen:
                if current in mainline:
                    return mainline[current]
                seen.add(current)
                current = self._power_levels_auth_event(current)
            return float("inf")

        keys = {eid: (-position(eid), _origin_ts(self.get(eid)), eid) for eid in event_ids}
        return sorted(event_ids, key=keys.__getitem__)

    # -- auth ----------------------------------------------------------------------------

    def iterative_auth_checks(
        self, event_ids: Sequence[str], initial: StateMap
    ) -> dict[StateKey, str]:
        """Apply each event in order to the state if it passes the auth rules against it.

        The auth rules read the state; where the state lacks a key they need, the event's
        own (not rejected) auth event for that key is used.
        """
        state = dict(initial)
        self.load_rejected(
            [*initial.values(), *(aid for eid in event_ids for aid in self.auth_ids(eid))]
        )
        for eid in event_ids:
            event = self.get(eid)
            key = state_key_tuple(event) if event is not None else None
            if event is None or key is None:
                continue
            try:
                recheck_auth(event, self._auth_events_for(eid, event, state), self.rv)
            except EventRejected:
                continue
            state[key] = eid
        return state

    def _auth_events_for(
        self, event_id: str, event: Mapping[str, Any], state: StateMap
    ) -> dict[StateKey, Mapping[str, Any]]:
        auth_events: dict[StateKey, Mapping[str, Any]] = {}
        for aid in self.auth_ids(event_id):
            auth_event = self.get(aid)
            key = state_key_tuple(auth_event) if auth_event is not None else None
            if auth_event is not None and key is not None and not self.is_rejected(aid):
                auth_events[key] = auth_event
        for key in auth_types_for_event(event, self.rv):
            state_id = state.get(key)
            state_event = self.get(state_id) if state_id is not None else None
            if state_id is not None and state_event is not None and not self.is_rejected(state_id):
                auth_events[key] = state_event
        return auth_events


def _origin_ts(event: Mapping[str, Any] | None) -> int:
    ts = event.get("origin_server_ts") if event is not None else None
    return ts if isinstance(ts, int) and not isinstance(ts, bool) else 0


def auth_chain(
    rv: RoomVersion,
    event_ids: Iterable[str],
    store: EventStore,
    event_map: Mapping[str, Mapping[str, Any]] | None = None,
) -> set[str]:
    """The auth chain of the given events (their auth events, recursively; not themselves)."""
    graph = _AuthGraph(rv, event_map, store)
    starts = list(event_ids)
    chain = graph.reachable(a for eid in starts for a in graph.auth_ids(eid))
    return {eid for eid in chain if graph.get(eid) is not None}


__all__ = [
    "EventStore",
    "JsonDict",
    "MemoryEventStore",
    "StateMap",
    "auth_chain",
    "is_power_event",
    "resolve_state",
    "resolve_state_v2",
]
