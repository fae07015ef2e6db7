"""Power level auth rules (rule 9; 10 in v1-v5 and v12), integer-only levels (v10) and room
creators (v12)."""

from __future__ import annotations

from typing import Any

import pytest

from matrixhs.protocol.power_levels import CREATOR_POWER_LEVEL, get_power_level
from matrixhs.protocol.room_versions import KNOWN_ROOM_VERSIONS
from matrixhs.protocol.tests.roombuilder import ALICE, BOB, CHARLIE, MALLORY, Room
from matrixhs.protocol.tests.test_event_auth import assert_rejected, standard_room

RV = KNOWN_ROOM_VERSIONS
ALL = list(RV)


def admins(version: str) -> dict[str, int]:
    """Alice's entry: none from v12 (creators may not be listed)."""
    return {} if RV[version].privileged_creators else {ALICE: 100}


def power_levels(room: Room, sender: str, **content: Any) -> dict[str, Any]:
    _, event = room.make(sender, "m.room.power_levels", content, "")
    return event


def moderated_room(version: str, **pl: Any) -> Room:
    """Bob is a moderator (50), Charlie a user at 40; Mallory joined at 0."""
    room = standard_room(version, users={BOB: 50, CHARLIE: 40}, **pl)
    for user in (BOB, CHARLIE, MALLORY):
        room.join(user)
    return room


def users(version: str, **levels: int) -> dict[str, int]:
    named = {"bob": BOB, "charlie": CHARLIE, "mallory": MALLORY}
    return {**admins(version), **{named[name]: level for name, level in levels.items()}}


# --- shape (9.1-9.3) --------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_string_levels_only_before_v10(version: str) -> None:
    room = standard_room(version)
    event = power_levels(room, ALICE, users={**admins(version), BOB: "50"}, ban=" +50 ")
    if RV[version].integer_only_power_levels:
        assert_rejected(room, event)
    else:
        room.check(event)


@pytest.mark.parametrize(
    "content",
    [
        {"kick": "50"},
        {"invite": True},
        {"events": {"m.room.name": "50"}},
        {"notifications": {"room": "1"}},
        {"events": ["m.room.name"]},
    ],
)
@pytest.mark.parametrize("version", ["10", "11", "12"])
def test_v10_rejects_non_integer_levels(version: str, content: dict[str, Any]) -> None:
    room = standard_room(version)
    assert_rejected(room, power_levels(room, ALICE, users=admins(version), **content))
    # Also as the first power levels event, which rule 9.4 would otherwise allow.
    first = Room(RV[version])
    assert_rejected(first, power_levels(first, ALICE, users=admins(version), **content))


@pytest.mark.parametrize("version", ["1", "9", "11"])
def test_users_must_map_user_ids_to_levels(version: str) -> None:
    room = standard_room(version)
    bad_key = power_levels(room, ALICE, users={**admins(version), "not-a-user": 10})
    assert_rejected(room, bad_key, "not-a-user")
    bad_value = power_levels(room, ALICE, users={**admins(version), BOB: "ten"})
    assert_rejected(room, bad_value, "users")
    assert_rejected(room, power_levels(room, ALICE, users=[BOB]), "object")


def test_v1_to_v5_accept_float_levels() -> None:
    room = standard_room("5")
    room.check(power_levels(room, ALICE, users={ALICE: 100, BOB: 50.57}))
    # From v6 a float cannot even be signed; an event carrying one is rejected by auth too.
    room6 = standard_room("6")
    event = power_levels(room6, ALICE, users={ALICE: 100})
    assert_rejected(room6, dict(event, content={"users": {ALICE: 100, BOB: 50.5}}), "users")


# --- changes (9.4-9.9) -------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL[:11])
def test_first_power_levels_event_is_always_allowed(version: str) -> None:
    room = Room(RV[version])
    room.check(power_levels(room, ALICE, users={ALICE: 100, BOB: 1000}, ban=1000))


@pytest.mark.parametrize("version", ALL)
def test_users_cannot_raise_themselves_or_others_above_their_level(version: str) -> None:
    room = moderated_room(version)
    assert_rejected(room, power_levels(room, BOB, users=users(version, bob=51, charlie=40)))
    assert_rejected(room, power_levels(room, BOB, users=users(version, bob=50, charlie=51)))
    room.check(power_levels(room, BOB, users=users(version, bob=50, charlie=50, mallory=50)))


@pytest.mark.parametrize("version", ALL)
def test_users_can_lower_themselves_but_not_peers(version: str) -> None:
    room = moderated_room(version, users_default=0)
    room.send(ALICE, "m.room.power_levels", {"users": users(version, bob=50, charlie=50)}, "")
    room.check(power_levels(room, BOB, users=users(version, bob=10, charlie=50)))
    assert_rejected(room, power_levels(room, BOB, users=users(version, bob=50, charlie=10)))
    assert_rejected(room, power_levels(room, BOB, users=users(version, bob=50)))  # removal


@pytest.mark.parametrize("version", ALL)
def test_users_below_the_sender_can_be_changed(version: str) -> None:
    room = moderated_room(version)
    room.check(power_levels(room, BOB, users=users(version, bob=50, charlie=0)))
    room.check(power_levels(room, BOB, users=users(version, bob=50)))  # Charlie removed


@pytest.mark.parametrize("version", ALL)
def test_top_level_levels_within_the_senders_power(version: str) -> None:
    room = moderated_room(version, kick=75, ban=50)
    base = users(version, bob=50, charlie=40)
    room.check(power_levels(room, BOB, users=base, kick=75, ban=20, state_default=50))
    assert_rejected(room, power_levels(room, BOB, users=base, kick=40), "kick")  # was 75
    assert_rejected(room, power_levels(room, BOB, users=base, kick=75, ban=60), "ban")
    # Removing a level counts as a change of it (the old value is above Bob).
    assert_rejected(room, power_levels(room, BOB, users=base), "kick")


@pytest.mark.parametrize("version", ALL)
def test_events_entries_within_the_senders_power(version: str) -> None:
    room = moderated_room(version, events={"m.room.name": 100, "m.room.topic": 10})
    base = users(version, bob=50, charlie=40)
    keep = {"m.room.name": 100}
    room.check(power_levels(room, BOB, users=base, events={**keep, "m.room.topic": 50}))
    assert_rejected(room, power_levels(room, BOB, users=base, events={"m.room.topic": 10}))
    assert_rejected(room, power_levels(room, BOB, users=base, events={**keep, "x": 51}))


@pytest.mark.parametrize("version", ["5", "6", "11", "12"])
def test_notifications_are_checked_from_v6(version: str) -> None:
    room = moderated_room(version, notifications={"room": 100})
    event = power_levels(room, BOB, users=users(version, bob=50, charlie=40))
    if RV[version].limit_notifications_power_levels:
        assert_rejected(room, event, "notifications")
    else:
        room.check(event)


@pytest.mark.parametrize("version", ["1", "9"])
def test_string_and_integer_forms_of_a_level_are_the_same_level(version: str) -> None:
    room = moderated_room(version, kick=75)
    levels = {ALICE: 100, BOB: "050", CHARLIE: 40}
    room.check(power_levels(room, BOB, users=levels, kick="75"))


# --- room creators (v12) -----------------------------------------------------------------------


def test_v12_creators_cannot_be_listed_in_users() -> None:
    room = Room(RV["12"], create_content={"additional_creators": [BOB]})
    assert_rejected(room, power_levels(room, ALICE, users={ALICE: 100}), "creators")
    assert_rejected(room, power_levels(room, ALICE, users={BOB: 100}), "creators")
    room.check(power_levels(room, ALICE, users={CHARLIE: 100}))


def test_v12_creators_have_infinite_power() -> None:
    room = Room(RV["12"], create_content={"additional_creators": [BOB]})
    room.set_power_levels({CHARLIE: 100, MALLORY: 2**53 - 1}, kick=50, ban=50)
    room.set_join_rule("public")
    for user in (BOB, CHARLIE, MALLORY):
        room.join(user)
    # Nobody can kick or ban a creator, not even the highest listed user...
    assert_rejected(room, _membership(room, MALLORY, ALICE, "ban"), "may not ban")
    assert_rejected(room, _membership(room, MALLORY, BOB, "leave"), "may not kick")
    # ...nor another creator, while creators can act on anyone.
    assert_rejected(room, _membership(room, BOB, ALICE, "leave"), "may not kick")
    room.check(_membership(room, BOB, MALLORY, "ban"))
    room.check(power_levels(room, BOB, users={CHARLIE: 2**53 - 1}, kick=2**53 - 1))


def test_v11_has_no_privileged_creators() -> None:
    room = Room(RV["11"])
    room.set_power_levels({ALICE: 50, BOB: 100})
    room.set_join_rule("public")
    room.join(BOB)
    room.check(_membership(room, BOB, ALICE, "ban"))
    assert get_power_level(ALICE, {"users": {ALICE: 50}}, room.create, RV["11"]) == 50


def test_v12_creator_power_without_power_levels_event() -> None:
    room = Room(RV["12"], create_content={"additional_creators": [BOB]})
    assert get_power_level(ALICE, None, room.create, RV["12"]) == CREATOR_POWER_LEVEL
    assert get_power_level(BOB, None, room.create, RV["12"]) == CREATOR_POWER_LEVEL
    assert get_power_level(CHARLIE, None, room.create, RV["12"]) == 0


def _membership(room: Room, sender: str, target: str, membership: str) -> dict[str, Any]:
    _, event = room.make(sender, "m.room.member", {"membership": membership}, target)
    return event
