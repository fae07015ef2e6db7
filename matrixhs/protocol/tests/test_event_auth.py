"""Auth rules outside membership and power levels: create events (rule 1), the auth events
list (rule 2), v12's room ID rule, m.federate, sending rules (5-8), aliases and redactions,
auth events selection and size limits."""

from __future__ import annotations

from typing import Any

import pytest

from matrixhs.protocol.event_auth import (
    EventRejected,
    auth_types_for_event,
    check_auth,
    check_auth_events_list,
)
from matrixhs.protocol.events import EventTooLarge, check_size_limits
from matrixhs.protocol.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from matrixhs.protocol.tests.roombuilder import ALICE, BOB, CHARLIE, MALLORY, Room

RV = KNOWN_ROOM_VERSIONS
ALL = list(RV)


def standard_room(
    version: str, join_rule: str = "public", users: dict[str, int] | None = None, **pl: Any
) -> Room:
    """Alice creates and joins; power levels (Alice 100 before v12) and a join rule."""
    rv = RV[version]
    room = Room(rv)
    levels = {} if rv.privileged_creators else {ALICE: 100}
    levels.update(users or {})
    room.set_power_levels(levels, **pl)
    room.set_join_rule(join_rule)
    return room


def assert_rejected(room: Room, event: dict[str, Any], match: str | None = None) -> None:
    with pytest.raises(EventRejected, match=match):
        room.check(event)


# --- rule 1: create events -----------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_create_event_is_allowed(version: str) -> None:
    room = Room(RV[version])
    room.check(room.create)


@pytest.mark.parametrize("version", ALL)
def test_create_with_prev_events_is_rejected(version: str) -> None:
    room = Room(RV[version])
    assert_rejected(room, dict(room.create, prev_events=["$x:example.com"]), "prev_events")


@pytest.mark.parametrize("version", ALL[:11])
def test_create_room_id_domain_must_be_the_senders(version: str) -> None:
    room = Room(RV[version])
    assert_rejected(room, dict(room.create, room_id="!room:other.example"), "domain")


def test_v12_create_must_not_have_a_room_id() -> None:
    room = Room(RV["12"])
    assert_rejected(room, dict(room.create, room_id="!room:example.com"), "room_id")


@pytest.mark.parametrize("room_version", ["999", 11, None])
@pytest.mark.parametrize("version", ["1", "11", "12"])
def test_create_with_unknown_room_version_is_rejected(version: str, room_version: Any) -> None:
    room = Room(RV[version])
    content = dict(room.create["content"], room_version=room_version)
    assert_rejected(room, dict(room.create, content=content), "room_version")


@pytest.mark.parametrize("version", ALL)
def test_creator_property_required_before_v11(version: str) -> None:
    room = Room(RV[version])
    event = dict(room.create, content={"room_version": version})
    if RV[version].implicit_room_creator:
        room.check(event)
    else:
        assert_rejected(room, event, "creator")


@pytest.mark.parametrize(
    ("additional", "ok"),
    [([BOB, CHARLIE], True), ([], True), (["not-a-user"], False), ("@bob:x", False), ([5], False)],
)
def test_v12_additional_creators_must_be_user_ids(additional: Any, ok: bool) -> None:
    room = Room(RV["12"])
    event = dict(room.create, content={"room_version": "12", "additional_creators": additional})
    if ok:
        room.check(event)
    else:
        assert_rejected(room, event, "additional_creators")


def test_v11_ignores_additional_creators() -> None:
    room = Room(RV["11"])
    room.check(dict(room.create, content={"additional_creators": "junk"}))


# --- rule 2 (3 in v12): the auth events list -----------------------------------------------


def _event_ids(room: Room, event: dict[str, Any]) -> list[str]:
    refs = event["auth_events"]
    return [ref[0] if isinstance(ref, list) else ref for ref in refs]


@pytest.mark.parametrize("version", ALL)
def test_auth_events_list_is_keyed_by_state_key(version: str) -> None:
    room = standard_room(version)
    _, event = room.make(ALICE, "m.room.message", {"body": "hi"})
    listed = [room.events[eid] for eid in _event_ids(room, event)]
    by_key = check_auth_events_list(event, listed, RV[version])
    expected = {("m.room.power_levels", ""), ("m.room.member", ALICE)}
    if not RV[version].room_id_from_create_event:
        expected.add(("m.room.create", ""))
    assert set(by_key) == expected


@pytest.mark.parametrize("version", ["2", "11", "12"])
def test_auth_events_list_rejects_duplicates_and_strangers(version: str) -> None:
    rv = RV[version]
    room = standard_room(version)
    _, event = room.make(ALICE, "m.room.message", {"body": "hi"})
    listed = [room.events[eid] for eid in _event_ids(room, event)]
    power_levels = room.events[room.state[("m.room.power_levels", "")]]
    with pytest.raises(EventRejected, match="duplicate"):
        check_auth_events_list(event, [*listed, power_levels], rv)
    join_rules = room.events[room.state[("m.room.join_rules", "")]]
    with pytest.raises(EventRejected, match="may cite"):
        check_auth_events_list(event, [*listed, join_rules], rv)
    foreign = dict(power_levels, room_id="!elsewhere:example.com")
    others = [e for e in listed if e is not power_levels]
    with pytest.raises(EventRejected, match="another room"):
        check_auth_events_list(event, [*others, foreign], rv)


@pytest.mark.parametrize("version", ["1", "11"])
def test_auth_events_list_needs_the_create_event_before_v12(version: str) -> None:
    room = standard_room(version)
    _, event = room.make(ALICE, "m.room.message", {"body": "hi"})
    listed = [room.events[eid] for eid in _event_ids(room, event)]
    without_create = [e for e in listed if e["type"] != "m.room.create"]
    with pytest.raises(EventRejected, match="create"):
        check_auth_events_list(event, without_create, RV[version])


def test_v12_auth_events_list_must_not_cite_the_create_event() -> None:
    room = standard_room("12")
    _, event = room.make(ALICE, "m.room.message", {"body": "hi"})
    listed = [room.events[eid] for eid in _event_ids(room, event)]
    with pytest.raises(EventRejected, match="may cite"):
        check_auth_events_list(event, [*listed, room.create], RV["12"])


# --- general rules -------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_no_create_event_in_state_is_rejected(version: str) -> None:
    room = standard_room(version)
    _, event = room.make(ALICE, "m.room.message", {"body": "hi"})
    auth = {k: v for k, v in room.auth_map(event).items() if k[0] != "m.room.create"}
    with pytest.raises(EventRejected, match="create"):
        check_auth(event, auth, RV[version], room.keys)


def test_v12_room_id_must_be_the_create_event_id() -> None:
    room = standard_room("12")
    _, event = room.make(ALICE, "m.room.message", {"body": "hi"})
    room.check(event)
    assert_rejected(room, dict(event, room_id="!" + "A" * 43), "room ID")
    other = Room(RV["12"], create_content={"topic": "another room"})
    auth = dict(room.auth_map(event))
    auth[("m.room.create", "")] = other.create
    with pytest.raises(EventRejected, match="room ID"):
        check_auth(event, auth, RV["12"], room.keys)


@pytest.mark.parametrize("version", ["1", "11", "12"])
def test_m_federate_false_keeps_other_servers_out(version: str) -> None:
    room = Room(RV[version], create_content={"m.federate": False})
    room.set_join_rule("public")
    _, mallory_join = room.make(MALLORY, "m.room.member", {"membership": "join"}, MALLORY)
    assert_rejected(room, mallory_join, "federate")
    room.join(BOB)  # same server as the creator


@pytest.mark.parametrize("version", ALL)
def test_sender_must_be_joined(version: str) -> None:
    room = standard_room(version)
    _, event = room.make(BOB, "m.room.message", {"body": "hi"})
    assert_rejected(room, event, "not in the room")
    room.join(BOB)
    room.send(BOB, "m.room.message", {"body": "hi"})


@pytest.mark.parametrize("version", ALL)
def test_required_power_level_to_send(version: str) -> None:
    room = standard_room(version, events_default=10, events={"m.room.name": 0})
    room.join(BOB)
    _, message = room.make(BOB, "m.room.message", {"body": "hi"})
    assert_rejected(room, message, "power level")
    _, topic = room.make(BOB, "m.room.topic", {"topic": "x"}, "")
    assert_rejected(room, topic, "power level")  # state_default 50
    room.send(BOB, "m.room.name", {"name": "x"}, "")  # explicitly lowered
    room.send(ALICE, "m.room.message", {"body": "hi"})


@pytest.mark.parametrize("version", ["1", "11", "12"])
def test_state_key_starting_with_at_must_be_the_sender(version: str) -> None:
    room = standard_room(version, state_default=0)
    room.join(BOB)
    _, event = room.make(BOB, "org.example.thing", {}, ALICE)
    assert_rejected(room, event, "@")
    room.send(BOB, "org.example.thing", {}, BOB)
    room.send(BOB, "org.example.thing", {}, "no-at")


@pytest.mark.parametrize("version", ["1", "11", "12"])
def test_third_party_invite_event_needs_invite_level(version: str) -> None:
    room = standard_room(version, invite=50)
    room.join(BOB)
    content = {"display_name": "b", "public_key": "abc", "key_validity_url": "https://x"}
    _, event = room.make(BOB, "m.room.third_party_invite", content, "token")
    assert_rejected(room, event, "invite")
    room.send(ALICE, "m.room.third_party_invite", content, "token")


@pytest.mark.parametrize("version", ["1", "5"])
def test_aliases_special_case_before_v6(version: str) -> None:
    room = standard_room(version)
    # Mallory is not in the room, but may publish her own server's aliases.
    room.send(MALLORY, "m.room.aliases", {"aliases": ["#a:evil.example"]}, "evil.example")
    _, event = room.make(MALLORY, "m.room.aliases", {"aliases": []}, "example.com")
    assert_rejected(room, event, "server name")
    _, no_key = room.make(MALLORY, "m.room.aliases", {"aliases": []})
    assert_rejected(room, no_key, "state_key")


def test_aliases_are_ordinary_state_from_v6() -> None:
    room = standard_room("6")
    _, event = room.make(MALLORY, "m.room.aliases", {"aliases": []}, "evil.example")
    assert_rejected(room, event, "not in the room")


@pytest.mark.parametrize("version", ["1", "2"])
def test_v1_redaction_rule(version: str) -> None:
    room = standard_room(version)
    room.join(BOB)
    # Bob (level 0 < redact 50) may redact events whose ID has his event's domain.
    room.send(BOB, "m.room.redaction", {}, redacts="$own:example.com")
    _, event = room.make(BOB, "m.room.redaction", {}, redacts="$theirs:other.example")
    assert_rejected(room, event, "redact")
    room.send(ALICE, "m.room.redaction", {}, redacts="$theirs:other.example")


def test_redactions_are_not_special_from_v3() -> None:
    room = standard_room("3")
    room.join(BOB)
    room.send(BOB, "m.room.redaction", {}, redacts="$theirs:other.example")


# --- auth events selection ------------------------------------------------------------------


def _member(sender: str, target: str, membership: str, **content: Any) -> dict[str, Any]:
    return {
        "type": "m.room.member",
        "sender": sender,
        "state_key": target,
        "content": {"membership": membership, **content},
    }


def _types(event: dict[str, Any], version: str) -> set[tuple[str, str]]:
    return auth_types_for_event(event, RV[version])


def test_auth_types_for_create_and_messages() -> None:
    assert _types({"type": "m.room.create", "sender": ALICE}, "11") == set()
    message = {"type": "m.room.message", "sender": BOB}
    base = {("m.room.power_levels", ""), ("m.room.member", BOB)}
    assert _types(message, "11") == base | {("m.room.create", "")}
    assert _types(message, "12") == base


def test_auth_types_for_memberships() -> None:
    common = {("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", ALICE)}
    target = {("m.room.member", BOB)}
    join_rules = {("m.room.join_rules", "")}
    assert _types(_member(ALICE, BOB, "leave"), "11") == common | target
    assert _types(_member(ALICE, BOB, "ban"), "11") == common | target
    for membership in ("join", "invite", "knock"):
        assert _types(_member(ALICE, BOB, membership), "11") == common | target | join_rules


def test_auth_types_for_third_party_invites_and_restricted_joins() -> None:
    invite = _member(ALICE, BOB, "invite", third_party_invite={"signed": {"token": "tok"}})
    assert ("m.room.third_party_invite", "tok") in _types(invite, "11")
    join = _member(BOB, BOB, "join", join_authorised_via_users_server=CHARLIE)
    assert ("m.room.member", CHARLIE) in _types(join, "8")
    assert ("m.room.member", CHARLIE) not in _types(join, "7")


# --- size limits -----------------------------------------------------------------------------


def _small_event(rv: RoomVersion, **fields: Any) -> dict[str, Any]:
    event = {"type": "m.room.message", "sender": ALICE, "room_id": "!r:example.com",
             "content": {}, "event_id": "$e:example.com"}  # fmt: skip
    event.update(fields)
    return event


@pytest.mark.parametrize(
    "fields",
    [
        {"sender": "@" + "a" * 250 + ":example.com"},
        {"room_id": "!" + "a" * 250 + ":example.com"},
        {"type": "t" * 256},
        {"state_key": "é" * 128},  # 256 bytes
        {"content": {"body": "x" * 65536}},
    ],
)
def test_size_limits(fields: dict[str, Any]) -> None:
    with pytest.raises(EventTooLarge):
        check_size_limits(_small_event(RV["11"], **fields), RV["11"])


def test_size_limits_allow_the_maximum() -> None:
    check_size_limits(_small_event(RV["11"], type="t" * 255, state_key="k" * 255), RV["11"])
    event = _small_event(RV["11"])
    base = len(str(event).encode()) + 20
    check_size_limits(_small_event(RV["11"], content={"b": "x" * (65536 - base - 200)}), RV["11"])


def test_event_id_size_limit_only_where_ids_are_carried() -> None:
    long_id = "$" + "e" * 255 + ":example.com"
    with pytest.raises(EventTooLarge):
        check_size_limits(_small_event(RV["1"], event_id=long_id), RV["1"])
    check_size_limits(_small_event(RV["11"], event_id=long_id), RV["11"])
