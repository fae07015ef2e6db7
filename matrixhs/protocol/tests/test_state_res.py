"""State resolution v2 and v2.1.

The classic graphs and their expected outcomes are those Synapse publishes in
tests/state/test_v2.py; the v2.1 cases those of tests/state/test_v21.py (data only).
"""

from __future__ import annotations

import dataclasses

import pytest

from matrixhs.protocol.events import StateKey
from matrixhs.protocol.room_versions import KNOWN_ROOM_VERSIONS, StateResolution
from matrixhs.protocol.state_res import (
    MemoryEventStore,
    auth_chain,
    is_power_event,
    resolve_state,
    resolve_state_v2,
)
from matrixhs.protocol.tests.stategraphs import (
    ALICE,
    BOB,
    CHARLIE,
    EVELYN,
    ZARA,
    Graph,
    Node,
    build_graph,
    changed_state,
    member,
    power,
    topic,
)

RV = KNOWN_ROOM_VERSIONS
# v2: v1-style IDs ($NODE:example.com) as in Synapse's tests; v11: hash IDs.
CLASSIC_VERSIONS = ["2", "11"]


def check(version: str, nodes: list[Node], edges: list[list[str]], expected: list[str]) -> None:
    graph = build_graph(RV[version], nodes, edges)
    want, got = changed_state(graph, expected)
    assert got == want


@pytest.mark.parametrize("version", CLASSIC_VERSIONS)
def test_ban_vs_power_levels(version: str) -> None:
    nodes = [
        power("PA", ALICE, {ALICE: 100, BOB: 50}),
        member("MA", ALICE, ALICE, "join"),
        member("MB", ALICE, BOB, "ban"),
        power("PB", BOB, {ALICE: 100, BOB: 50}),
    ]
    edges = [["END", "MB", "MA", "PA", "START"], ["END", "PB", "PA"]]
    check(version, nodes, edges, ["PA", "MA", "MB"])


@pytest.mark.parametrize("version", CLASSIC_VERSIONS)
def test_join_rule_evasion(version: str) -> None:
    nodes = [
        Node("JR", ALICE, "m.room.join_rules", "", {"join_rules": "private"}),
        member("ME", EVELYN, EVELYN, "join"),
    ]
    edges = [["END", "JR", "START"], ["END", "ME", "START"]]
    check(version, nodes, edges, ["JR"])


@pytest.mark.parametrize("version", CLASSIC_VERSIONS)
def test_offtopic_power_levels(version: str) -> None:
    nodes = [
        power("PA", ALICE, {ALICE: 100, BOB: 50}),
        power("PB", BOB, {ALICE: 100, BOB: 50, CHARLIE: 50}),
        power("PC", CHARLIE, {ALICE: 100, BOB: 50, CHARLIE: 0}),
    ]
    edges = [["END", "PC", "PB", "PA", "START"], ["END", "PA"]]
    check(version, nodes, edges, ["PC"])


@pytest.mark.parametrize("version", CLASSIC_VERSIONS)
def test_topic_basic(version: str) -> None:
    nodes = [
        topic("T1", ALICE),
        power("PA1", ALICE, {ALICE: 100, BOB: 50}),
        topic("T2", ALICE),
        power("PA2", ALICE, {ALICE: 100, BOB: 0}),
        power("PB", BOB, {ALICE: 100, BOB: 50}),
        topic("T3", BOB),
    ]
    edges = [["END", "PA2", "T2", "PA1", "T1", "START"], ["END", "T3", "PB", "PA1"]]
    check(version, nodes, edges, ["PA2", "T2"])


@pytest.mark.parametrize("version", CLASSIC_VERSIONS)
def test_topic_reset(version: str) -> None:
    nodes = [
        topic("T1", ALICE),
        power("PA", ALICE, {ALICE: 100, BOB: 50}),
        topic("T2", BOB),
        member("MB", ALICE, BOB, "ban"),
    ]
    edges = [["END", "MB", "T2", "PA", "T1", "START"], ["END", "T1"]]
    check(version, nodes, edges, ["T1", "MB", "PA"])


@pytest.mark.parametrize("version", CLASSIC_VERSIONS)
def test_topic(version: str) -> None:
    nodes = [
        topic("T1", ALICE),
        power("PA1", ALICE, {ALICE: 100, BOB: 50}),
        topic("T2", ALICE),
        power("PA2", ALICE, {ALICE: 100, BOB: 0}),
        power("PB", BOB, {ALICE: 100, BOB: 50}),
        topic("T3", BOB),
        Node("MZ1", ZARA, "m.room.message", None, {}),
        topic("T4", ALICE),
    ]
    edges = [
        ["END", "T4", "MZ1", "PA2", "T2", "PA1", "T1", "START"],
        ["END", "MZ1", "T3", "PB", "PA1"],
    ]
    check(version, nodes, edges, ["T4", "PA2"])


@pytest.mark.parametrize("version", CLASSIC_VERSIONS)
def test_mainline_sort(version: str) -> None:
    nodes = [
        topic("T1", ALICE),
        power("PA1", ALICE, {ALICE: 100, BOB: 50}),
        topic("T2", ALICE),
        power("PA2", ALICE, {ALICE: 100, BOB: 50}, events={"m.room.power_levels": 100}),
        power("PB", BOB, {ALICE: 100, BOB: 50}),
        topic("T3", BOB),
        topic("T4", ALICE),
    ]
    edges = [["END", "T3", "PA2", "T2", "PA1", "T1", "START"], ["END", "T4", "PB", "PA1"]]
    # T3 wins although T4 was sent after it: T4 hangs off an older mainline power level.
    check(version, nodes, edges, ["T3", "PA2"])


@pytest.mark.parametrize("version", CLASSIC_VERSIONS)
def test_power_events_are_sorted_with_their_auth_chain(version: str) -> None:
    # Alice kicks Bob (a power event); Bob rejoins (not a power event) and then changes the
    # power levels, citing his rejoin. The rejoin is in the auth chain of Bob's power levels
    # and in the full conflicted set, so it is ordered and checked with the power events;
    # checked later, Bob would still count as kicked when his power levels are checked.
    nodes = [
        power("PA", ALICE, {ALICE: 100, BOB: 50}),
        member("MBK", ALICE, BOB, "leave"),
        member("MBJ", BOB, BOB, "join"),
        power("PB", BOB, {ALICE: 100, BOB: 50}),
    ]
    edges = [["END", "PB", "MBJ", "MBK", "PA", "START"], ["END", "MBK"]]
    check(version, nodes, edges, ["PB", "MBJ"])


def test_no_conflict_returns_the_state_as_is() -> None:
    graph = build_graph(RV["11"], [], [["END", "START"]])
    state = graph.state_after["START"]
    assert resolve_state(RV["11"], [state, dict(state)], None, graph.store) == state


def test_a_key_missing_from_one_state_set_is_conflicted() -> None:
    # Bob's join is in one state only: it must pass auth again to be kept, and it does.
    graph = build_graph(RV["11"], [], [["END", "START"]])
    state = graph.state_after["START"]
    without_bob = {k: v for k, v in state.items() if k != ("m.room.member", BOB)}
    assert graph.resolve([state, without_bob]) == state


def test_room_version_1_resolves_with_v1() -> None:
    # Unknown events are skipped by v1; v2 would have nothing to refuse them with either.
    assert resolve_state(RV["1"], [{}, {("a", ""): "$x"}], None, MemoryEventStore()) == {
        ("a", ""): "$x"
    }
    with pytest.raises(ValueError):
        resolve_state_v2(RV["1"], [{}, {("a", ""): "$x"}], None, MemoryEventStore())


def test_power_events() -> None:
    assert is_power_event({"type": "m.room.power_levels", "state_key": ""})
    assert is_power_event({"type": "m.room.join_rules", "state_key": ""})
    kick = {"type": "m.room.member", "state_key": BOB, "sender": ALICE}
    assert is_power_event(dict(kick, content={"membership": "leave"}))
    assert is_power_event(dict(kick, content={"membership": "ban"}))
    assert not is_power_event(dict(kick, sender=BOB, content={"membership": "leave"}))
    assert not is_power_event(dict(kick, content={"membership": "invite"}))
    assert not is_power_event({"type": "m.room.topic", "state_key": ""})
    assert not is_power_event({"type": "m.room.power_levels"})  # not a state event


def test_auth_chain_follows_auth_events() -> None:
    graph = build_graph(RV["11"], [], [["END", "START"]])
    chain = auth_chain(RV["11"], [graph.ids["IMB"]], graph.store)
    assert chain == {graph.ids[name] for name in ("CREATE", "IMA", "IPOWER", "IJR")}


def test_v12_auth_chain_includes_the_implied_create_event() -> None:
    graph = build_graph(RV["12"], [], [["END", "START"]])
    assert "$" + graph.room_id[1:] == graph.ids["CREATE"]
    chain = auth_chain(RV["12"], [graph.ids["IMA"]], graph.store)
    assert chain == {graph.ids["CREATE"]}


# --- v2.1 (room version 12) -----------------------------------------------------------------

# Room version 11's rules with state resolution v2.1 (as Synapse's "HydraV11"), to show what
# the algorithm change alone does.
V11_WITH_V2_1 = dataclasses.replace(
    RV["11"], identifier="test.v11-v2.1", state_res=StateResolution.V2_1
)


class LinearGraph(Graph):
    """Events with explicit auth events (the create event added where the version lists it)."""

    def event(self, node: Node, auth: list[str], prev: list[str] | None = None) -> str:
        if not self.rv.room_id_from_create_event and node.type != "m.room.create":
            auth = ["CREATE", *auth]
        return self.add(node, prev or [], auth, depth=5)


def start_empty_scenario(
    graph: LinearGraph, bob_is_admin_only: bool
) -> tuple[dict[StateKey, str], dict[StateKey, str]]:
    """Alice makes Bob an admin, sets the room public, Bob joins, Alice makes it
    invite-only and leaves. A fork cites the old (public) join rules."""
    graph.event(Node("CREATE", ALICE, "m.room.create", "", {"creator": ALICE}), [])
    graph.event(member("MA1", ALICE, ALICE, "join"), [], ["CREATE"])
    users = {BOB: 100} if bob_is_admin_only else {ALICE: 100, BOB: 100}
    graph.event(power("POWER", ALICE, users), ["MA1"])
    graph.event(
        Node("JR1", ALICE, "m.room.join_rules", "", {"join_rule": "public"}), ["MA1", "POWER"]
    )
    graph.event(member("MB", BOB, BOB, "join"), ["POWER", "JR1"])
    graph.event(
        Node("JR2", ALICE, "m.room.join_rules", "", {"join_rule": "invite"}), ["MA1", "POWER"]
    )
    graph.event(member("MA2", ALICE, ALICE, "leave"), ["POWER", "MA1"])
    common = {graph.key_of(n): graph.ids[n] for n in ("CREATE", "MA2", "MB", "POWER")}
    correct = dict(common) | {graph.key_of("JR2"): graph.ids["JR2"]}
    forked = dict(common) | {graph.key_of("JR1"): graph.ids["JR1"]}
    return correct, forked


def test_v12_starts_iterative_checks_from_an_empty_state() -> None:
    graph = LinearGraph(RV["12"])
    correct, forked = start_empty_scenario(graph, bob_is_admin_only=True)
    assert graph.resolve([correct, forked]) == correct


def test_v2_resets_join_rules_where_v2_1_does_not() -> None:
    # Under v2 the power events are checked against the unconflicted state, where Alice
    # has left: both join rules fail and the room loses its join rules. v2.1 checks them
    # against their own auth events and keeps the newer one.
    v2 = LinearGraph(RV["11"])
    correct, forked = start_empty_scenario(v2, bob_is_admin_only=False)
    assert ("m.room.join_rules", "") not in v2.resolve([correct, forked])
    v21 = LinearGraph(V11_WITH_V2_1)
    correct, forked = start_empty_scenario(v21, bob_is_admin_only=False)
    assert v21.resolve([correct, forked]) == correct


def replay_subgraph_scenario(
    graph: LinearGraph,
) -> tuple[list[dict[StateKey, str]], dict[StateKey, str]]:
    """Eve renames herself citing an old power levels event, while her join (which the
    rename also cites) was authorised by a newer one."""
    graph.event(Node("CREATE", ALICE, "m.room.create", "", {"creator": ALICE}), [])
    graph.event(member("MA", ALICE, ALICE, "join"), [], ["CREATE"])
    admin = {} if graph.rv.privileged_creators else {ALICE: 100}
    graph.event(power("POWER1", ALICE, admin), ["MA"])
    graph.event(
        Node("JR", ALICE, "m.room.join_rules", "", {"join_rule": "public"}), ["MA", "POWER1"]
    )
    graph.event(member("MB", BOB, BOB, "join"), ["POWER1", "JR"])
    graph.event(member("MC", CHARLIE, CHARLIE, "join"), ["POWER1", "JR"])
    graph.event(power("POWER2", ALICE, {**admin, BOB: 50}), ["MA", "POWER1"])
    graph.event(power("POWER3", BOB, {**admin, BOB: 50, CHARLIE: 50}), ["MB", "POWER2"])
    graph.event(member("ME1", EVELYN, EVELYN, "join"), ["POWER3", "JR"])
    graph.event(member("ME2", EVELYN, EVELYN, "join"), ["POWER1", "JR", "ME1"])
    graph.event(member("MZ", ZARA, ZARA, "join"), ["POWER3", "JR"])

    def state(*names: str) -> dict[StateKey, str]:
        return {graph.key_of(n): graph.ids[n] for n in ("CREATE", "MA", "MB", "MC", "JR", *names)}

    dodgy = state("ME2", "POWER1")
    sensible = state("MZ", "POWER3")
    return [dodgy, sensible], state("ME1", "MZ", "POWER3")


def test_v12_replays_the_conflicted_subgraph() -> None:
    graph = LinearGraph(RV["12"])
    state_sets, expected = replay_subgraph_scenario(graph)
    assert graph.resolve(state_sets) == expected
    assert graph.resolve(list(reversed(state_sets))) == expected


def test_v12_resolution_is_the_one_for_v11_rules_with_v2_1() -> None:
    graph = LinearGraph(V11_WITH_V2_1)
    state_sets, expected = replay_subgraph_scenario(graph)
    assert graph.resolve(state_sets) == expected


def test_resolution_reads_in_flight_events_from_the_event_map() -> None:
    graph = LinearGraph(RV["12"])
    state_sets, expected = replay_subgraph_scenario(graph)
    me2 = graph.ids["ME2"]
    store = MemoryEventStore({k: v for k, v in graph.events.items() if k != me2})
    in_flight = {me2: graph.events[me2]}
    assert resolve_state_v2(RV["12"], state_sets, in_flight, store) == expected


def test_rejected_auth_events_are_not_used() -> None:
    # If Alice's join is marked rejected, her join rules cannot be authorised from it.
    graph = LinearGraph(RV["12"])
    correct, forked = start_empty_scenario(graph, bob_is_admin_only=True)
    store = graph.store
    store.rejected.add(graph.ids["MA1"])
    resolved = resolve_state(RV["12"], [correct, forked], None, store)
    assert ("m.room.join_rules", "") not in resolved
