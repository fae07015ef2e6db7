"""State resolution v1 (room version 1): conflicts resolved by depth and sha1(event_id),
auth events first, each checked against the state resolved so far."""

from __future__ import annotations

import hashlib

from matrixhs.protocol.events import StateKey
from matrixhs.protocol.room_versions import KNOWN_ROOM_VERSIONS
from matrixhs.protocol.state_res import resolve_state
from matrixhs.protocol.state_res_v1 import separate_v1
from matrixhs.protocol.tests.stategraphs import (
    ALICE,
    BOB,
    CHARLIE,
    Graph,
    Node,
    build_graph,
    member,
    power,
)

V1 = KNOWN_ROOM_VERSIONS["1"]
PL: StateKey = ("m.room.power_levels", "")
TOPIC: StateKey = ("m.room.topic", "")


def sha1(event_id: str) -> str:
    return hashlib.sha1(event_id.encode()).hexdigest()  # noqa: S324


class Fork:
    """The classic initial room (Alice 100, Bob, Charlie and Zara joined) in room version
    1, and events added on top of its state at given depths."""

    def __init__(self) -> None:
        self.graph: Graph = build_graph(V1, [], [])
        self.base = dict(self.graph.state_after["START"])

    def add(self, node: Node, depth: int) -> str:
        return self.graph.add(node, ["START"], [], depth=depth)

    def resolve(self, *changes: dict[StateKey, str]) -> dict[StateKey, str]:
        return resolve_state(V1, [{**self.base, **c} for c in changes], None, self.graph.store)


def topic(name: str, sender: str, text: str = "") -> Node:
    return Node(name, sender, "m.room.topic", "", {"topic": text or name})


def test_states_without_conflict_are_merged() -> None:
    fork = Fork()
    only_here = fork.add(topic("T", ALICE), 5)
    resolved = fork.resolve({}, {TOPIC: only_here})
    assert resolved == {**fork.base, TOPIC: only_here}  # a key one state lacks: no conflict


def test_separate_v1() -> None:
    unconflicted, conflicted = separate_v1([{("a", ""): "$1", ("b", ""): "$2"}, {("a", ""): "$3"}])
    assert unconflicted == {("b", ""): "$2"}
    assert conflicted == {("a", ""): {"$1", "$3"}}


def test_a_later_power_levels_event_the_rules_allow_wins() -> None:
    fork = Fork()
    first = fork.add(power("PA", ALICE, {ALICE: 100, BOB: 50}), 5)
    # Bob may change power levels under PA (state_default 50) while keeping levels he may.
    second = fork.add(power("PB", BOB, {ALICE: 100, BOB: 50}, state_default=40), 6)
    assert fork.resolve({PL: first}, {PL: second})[PL] == second


def test_a_power_levels_event_the_rules_refuse_ends_the_step() -> None:
    fork = Fork()
    first = fork.add(power("PA", ALICE, {ALICE: 100, BOB: 50}), 5)
    refused = fork.add(power("PC", CHARLIE, {ALICE: 100, CHARLIE: 100}), 6)  # Charlie has 0
    later = fork.add(power("PD", ALICE, {ALICE: 100}), 7)
    resolved = fork.resolve({PL: first}, {PL: refused}, {PL: later})
    # Ascending depth: PA goes in, PC is refused, so PD (allowed) is never looked at.
    assert resolved[PL] == first


def test_equal_depth_auth_events_go_by_descending_sha1() -> None:
    fork = Fork()
    one = fork.add(power("PX", ALICE, {ALICE: 100, BOB: 10}), 5)
    two = fork.add(power("PY", ALICE, {ALICE: 100, BOB: 20}), 5)
    first, second = sorted([one, two], key=sha1, reverse=True)
    # The first goes in unchecked and the second, allowed, replaces it.
    assert fork.resolve({PL: one}, {PL: two})[PL] == second
    assert first != second


def test_a_ban_after_a_join_is_applied_in_depth_order() -> None:
    fork = Fork()
    key = ("m.room.member", BOB)
    leave = fork.add(member("LB", BOB, BOB, "leave"), 4)
    ban = fork.add(member("BB", ALICE, BOB, "ban"), 5)
    assert fork.resolve({key: ban}, {key: leave})[key] == ban


def test_other_keys_take_the_deepest_allowed_event() -> None:
    fork = Fork()
    shallow = fork.add(topic("TA", ALICE), 5)
    deep = fork.add(topic("TB", ALICE), 9)
    assert fork.resolve({TOPIC: shallow}, {TOPIC: deep})[TOPIC] == deep
    # The deepest one is skipped when the rules refuse it: an outsider's topic.
    outsider = fork.add(topic("TO", "@eve:example.com"), 12)
    assert fork.resolve({TOPIC: shallow}, {TOPIC: outsider})[TOPIC] == shallow


def test_other_keys_at_equal_depth_take_the_lowest_sha1() -> None:
    fork = Fork()
    one, two = fork.add(topic("T1", ALICE), 7), fork.add(topic("T2", ALICE), 7)
    assert fork.resolve({TOPIC: one}, {TOPIC: two})[TOPIC] == min([one, two], key=sha1)


def test_when_no_event_is_allowed_the_last_in_order_is_kept() -> None:
    fork = Fork()
    eve, mallory = "@eve:example.com", "@mallory:example.com"
    one, two = fork.add(topic("E1", eve), 3), fork.add(topic("E2", mallory), 8)
    assert fork.resolve({TOPIC: one}, {TOPIC: two})[TOPIC] == one


def test_auth_checks_see_the_power_levels_resolved_first() -> None:
    fork = Fork()
    # Under PA, Bob (50) may set the topic; under the base levels (Bob 0) he may not.
    raise_bob = fork.add(power("PA", ALICE, {ALICE: 100, BOB: 50}), 5)
    bob_topic = fork.add(topic("TB", BOB), 6)
    alice_topic = fork.add(topic("TA", ALICE), 4)
    resolved = fork.resolve({PL: raise_bob, TOPIC: alice_topic}, {TOPIC: bob_topic})
    assert resolved[PL] == raise_bob
    assert resolved[TOPIC] == bob_topic
    without = fork.resolve({TOPIC: alice_topic}, {TOPIC: bob_topic})
    assert without[TOPIC] == alice_topic


def test_events_unknown_to_the_store_are_skipped() -> None:
    fork = Fork()
    known = fork.add(topic("TK", ALICE), 5)
    resolved = fork.resolve({TOPIC: known}, {TOPIC: "$unknown:example.com"})
    assert resolved[TOPIC] == known
