"""Building event DAGs for state resolution tests.

A graph is a list of ``Node``s (named events) and chains of edges ``[A, B, C]`` meaning
"A's prev event is B, B's is C". Nodes are created in topological order (ties broken by
name), each with the state before it resolved from its prev events' states, auth events
picked from that state by the auth events selection, and increasing origin_server_ts. This
is the shape of the graphs Synapse publishes in tests/state/test_v2.py, whose graphs and
expected outcomes the tests reuse as data.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from matrixhs.protocol.event_auth import auth_types_for_event
from matrixhs.protocol.events import JsonDict, StateKey
from matrixhs.protocol.room_versions import EventFormat, RoomVersion
from matrixhs.protocol.signing import build_pdu
from matrixhs.protocol.state_res import MemoryEventStore, resolve_state
from matrixhs.protocol.tests.roombuilder import SERVER, appendix_key

ALICE = "@alice:example.com"
BOB = "@bob:example.com"
CHARLIE = "@charlie:example.com"
EVELYN = "@evelyn:example.com"
ZARA = "@zara:example.com"

JOIN = {"membership": "join"}


@dataclasses.dataclass(frozen=True)
class Node:
    """A named event of a test graph."""

    name: str
    sender: str
    type: str
    state_key: str | None
    content: Mapping[str, Any]


def member(name: str, sender: str, target: str, membership: str) -> Node:
    return Node(name, sender, "m.room.member", target, {"membership": membership})


def power(name: str, sender: str, users: Mapping[str, int], **content: Any) -> Node:
    return Node(name, sender, "m.room.power_levels", "", {"users": dict(users), **content})


def topic(name: str, sender: str) -> Node:
    return Node(name, sender, "m.room.topic", "", {})


# All the classic graphs start with these (Synapse tests/state/test_v2.py INITIAL_EVENTS).
INITIAL_NODES = [
    Node("CREATE", ALICE, "m.room.create", "", {"creator": ALICE}),
    member("IMA", ALICE, ALICE, "join"),
    power("IPOWER", ALICE, {ALICE: 100}),
    Node("IJR", ALICE, "m.room.join_rules", "", {"join_rule": "public"}),
    member("IMB", BOB, BOB, "join"),
    member("IMC", CHARLIE, CHARLIE, "join"),
    member("IMZ", ZARA, ZARA, "join"),
    Node("START", ZARA, "m.room.message", None, {}),
    Node("END", ZARA, "m.room.message", None, {}),
]
INITIAL_EDGES = ["START", "IMZ", "IMC", "IMB", "IJR", "IPOWER", "IMA", "CREATE"]


@dataclasses.dataclass
class Graph:
    """A built graph: event IDs by node name, events by ID, state after each node."""

    rv: RoomVersion
    ids: dict[str, str] = dataclasses.field(default_factory=dict)
    events: dict[str, JsonDict] = dataclasses.field(default_factory=dict)
    state_after: dict[str, dict[StateKey, str]] = dataclasses.field(default_factory=dict)
    room_id: str = ""
    ts: int = 0

    @property
    def store(self) -> MemoryEventStore:
        return MemoryEventStore(events=dict(self.events))

    def resolve(self, state_sets: Sequence[Mapping[StateKey, str]]) -> dict[StateKey, str]:
        return resolve_state(self.rv, state_sets, None, self.store)

    def key_of(self, name: str) -> StateKey:
        event = self.events[self.ids[name]]
        return (event["type"], event["state_key"])

    def add(
        self,
        node: Node,
        prev_events: Sequence[str],
        auth_events: Sequence[str],
        depth: int = 1,
    ) -> str:
        """Build, sign and record one event (referenced events by node name)."""
        self.ts += 1
        partial: JsonDict = {
            "type": node.type,
            "sender": node.sender,
            "content": dict(node.content),
            "prev_events": [self.ids[name] for name in prev_events],
            "auth_events": [self.ids[name] for name in auth_events],
            "depth": depth,
            "origin_server_ts": self.ts,
        }
        if node.state_key is not None:
            partial["state_key"] = node.state_key
        if not (node.type == "m.room.create" and self.rv.room_id_from_create_event):
            partial["room_id"] = self.room_id or "!room:" + SERVER
        if self.rv.event_format is EventFormat.V1:
            partial["event_id"] = f"${node.name}:{SERVER}"
        event_id, event = build_pdu(partial, SERVER, appendix_key(), self.rv)
        self.ids[node.name] = event_id
        self.events[event_id] = event
        if node.type == "m.room.create":
            self.room_id = event.get("room_id") or "!" + event_id[1:]
        return event_id


def _topological(graph: Mapping[str, set[str]]) -> Iterable[str]:
    """Node names, prev events first, ties broken by name."""
    waiting = {name: set(prevs) for name, prevs in graph.items()}
    children: dict[str, list[str]] = {name: [] for name in graph}
    for name, prevs in graph.items():
        for prev in prevs:
            children[prev].append(name)
    ready = [name for name, prevs in waiting.items() if not prevs]
    heapq.heapify(ready)
    while ready:
        name = heapq.heappop(ready)
        yield name
        for child in children[name]:
            waiting[child].discard(name)
            if not waiting[child]:
                heapq.heappush(ready, child)


def build_graph(rv: RoomVersion, nodes: Sequence[Node], edges: Sequence[Sequence[str]]) -> Graph:
    """Build ``INITIAL_NODES`` plus ``nodes`` linked by ``INITIAL_EDGES`` plus ``edges``."""
    by_name = {node.name: node for node in [*INITIAL_NODES, *nodes]}
    prevs: dict[str, set[str]] = {name: set() for name in by_name}
    for chain in [INITIAL_EDGES, *edges]:
        for child, parent in itertools.pairwise(chain):
            prevs[child].add(parent)
    graph = Graph(rv)
    names_by_id: dict[str, str] = {}
    for name in _topological(prevs):
        parents = sorted(prevs[name])
        if not parents:
            before: dict[StateKey, str] = {}
        elif len(parents) == 1:
            before = dict(graph.state_after[parents[0]])
        else:
            before = graph.resolve([graph.state_after[p] for p in parents])
        node = by_name[name]
        probe = {"type": node.type, "sender": node.sender, "state_key": node.state_key,
                 "content": node.content}  # fmt: skip
        keys = auth_types_for_event(probe, rv)
        auth = sorted(names_by_id[before[key]] for key in keys if key in before)
        event_id = graph.add(node, parents, auth)
        names_by_id[event_id] = name
        after = dict(before)
        if node.state_key is not None:
            after[(node.type, node.state_key)] = event_id
        graph.state_after[name] = after
    return graph


def changed_state(
    graph: Graph, expected_names: Sequence[str]
) -> tuple[dict[StateKey, str], dict[StateKey, str]]:
    """(expected, actual) state at END for the keys of ``expected_names`` and any key that
    differs from the state at START — the comparison Synapse's tests make."""
    expected = {graph.key_of(name): graph.ids[name] for name in expected_names}
    start, end = graph.state_after["START"], graph.state_after["END"]
    actual = {k: v for k, v in end.items() if k in expected or start.get(k) != v}
    return expected, actual
