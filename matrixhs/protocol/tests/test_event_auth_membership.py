"""Membership auth rules (rule 4; 5 in v1-v5 and v12): join, invite, third-party invites,
leave, kick, ban, knock and restricted joins."""

from __future__ import annotations

from typing import Any

import pytest

from matrixhs.protocol.event_auth import EventRejected, recheck_auth
from matrixhs.protocol.room_versions import KNOWN_ROOM_VERSIONS
from matrixhs.protocol.signing import (
    encode_verify_key,
    generate_signing_key,
    sign_event,
    sign_json,
    verify_key_of,
)
from matrixhs.protocol.tests.roombuilder import ALICE, BOB, CHARLIE, MALLORY, Room
from matrixhs.protocol.tests.test_event_auth import assert_rejected, standard_room

RV = KNOWN_ROOM_VERSIONS
ALL = list(RV)
KNOCK_VERSIONS = [v for v, rv in RV.items() if rv.knock_join_rule]
RESTRICTED_VERSIONS = [v for v, rv in RV.items() if rv.restricted_join_rule]


def member(room: Room, sender: str, target: str, membership: str, **content: Any) -> dict[str, Any]:
    _, event = room.make(sender, "m.room.member", {"membership": membership, **content}, target)
    return event


def send_member(room: Room, sender: str, target: str, membership: str, **content: Any) -> str:
    return room.send(sender, "m.room.member", {"membership": membership, **content}, target)


# --- structure ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "11", "12"])
def test_member_event_needs_state_key_and_membership(version: str) -> None:
    room = standard_room(version)
    _, no_membership = room.make(BOB, "m.room.member", {"displayname": "B"}, BOB)
    assert_rejected(room, no_membership, "membership")
    no_state_key = member(room, BOB, BOB, "join")
    del no_state_key["state_key"]
    assert_rejected(room, no_state_key, "state_key")


@pytest.mark.parametrize("version", ["1", "11", "12"])
def test_unknown_membership_is_rejected(version: str) -> None:
    room = standard_room(version)
    assert_rejected(room, member(room, BOB, BOB, "lurk"), "unknown membership")


# --- join --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_creator_joins_right_after_create(version: str) -> None:
    room = Room(RV[version], join_creator=False)
    room.check(member(room, ALICE, ALICE, "join"))
    # Nobody else gets that exemption (there is no join rule yet: invite-only).
    assert_rejected(room, member(room, BOB, BOB, "join"), "invite-only")


@pytest.mark.parametrize("version", ["10", "11"])
def test_first_join_exemption_follows_the_creator_definition(version: str) -> None:
    # v10: content.creator; v11: the sender of the create event.
    room = Room(RV[version], create_content={"creator": BOB}, join_creator=False)
    if RV[version].implicit_room_creator:
        room.check(member(room, ALICE, ALICE, "join"))
        assert_rejected(room, member(room, BOB, BOB, "join"))
    else:
        room.check(member(room, BOB, BOB, "join"))
        assert_rejected(room, member(room, ALICE, ALICE, "join"))


@pytest.mark.parametrize("version", ALL)
def test_anyone_can_join_a_public_room(version: str) -> None:
    room = standard_room(version)
    room.join(BOB)
    room.join(MALLORY)


@pytest.mark.parametrize("version", ALL)
def test_invite_only_room_needs_an_invite(version: str) -> None:
    room = standard_room(version, join_rule="invite")
    assert_rejected(room, member(room, BOB, BOB, "join"), "invite-only")
    send_member(room, ALICE, BOB, "invite")
    room.join(BOB)
    room.join(BOB)  # joined users may re-join (e.g. to change their profile)


@pytest.mark.parametrize("version", ALL)
def test_cannot_join_as_someone_else(version: str) -> None:
    room = standard_room(version)
    assert_rejected(room, member(room, ALICE, BOB, "join"), "as themselves")


@pytest.mark.parametrize("version", ALL)
def test_banned_user_cannot_join_a_public_room(version: str) -> None:
    room = standard_room(version)
    room.join(BOB)
    send_member(room, ALICE, BOB, "ban")
    assert_rejected(room, member(room, BOB, BOB, "join"), "banned")


@pytest.mark.parametrize("version", ["1", "11"])
def test_private_or_unknown_join_rules_let_nobody_in(version: str) -> None:
    for rule in ("private", "something-else"):
        room = standard_room(version, join_rule=rule)
        assert_rejected(room, member(room, BOB, BOB, "join"), "join rule")


@pytest.mark.parametrize("version", ["6", *KNOCK_VERSIONS])
def test_knock_join_rule_admits_the_invited(version: str) -> None:
    room = standard_room(version, join_rule="knock")
    assert_rejected(room, member(room, BOB, BOB, "join"))
    send_member(room, ALICE, BOB, "invite")
    if RV[version].knock_join_rule:
        room.join(BOB)
    else:
        assert_rejected(room, member(room, BOB, BOB, "join"), "join rule")


# --- restricted joins (v8+) -----------------------------------------------------------------


def restricted_room(version: str, join_rule: str = "restricted", **pl: Any) -> Room:
    room = standard_room(version, **pl)
    room.join(MALLORY)  # a member on another server
    room.set_join_rule(join_rule, allow=[{"type": "m.room_membership", "room_id": "!o:x"}])
    return room


@pytest.mark.parametrize("version", RESTRICTED_VERSIONS)
def test_restricted_join_authorised_by_a_member_who_may_invite(version: str) -> None:
    room = restricted_room(version)
    assert_rejected(room, member(room, BOB, BOB, "join"), "join_authorised_via_users_server")
    room.join(BOB, join_authorised_via_users_server=ALICE)


@pytest.mark.parametrize("version", RESTRICTED_VERSIONS)
def test_restricted_join_authoriser_must_be_joined_and_able_to_invite(version: str) -> None:
    room = restricted_room(version, invite=50)
    event = member(room, BOB, BOB, "join", join_authorised_via_users_server=CHARLIE)
    assert_rejected(room, event, "not in the room")
    room.set_join_rule("public")
    room.join(CHARLIE)
    room.set_join_rule("restricted", allow=[])
    event = member(room, BOB, BOB, "join", join_authorised_via_users_server=CHARLIE)
    assert_rejected(room, event, "may not invite")


#: Mallory's server and its signing key, which the room's key store knows.
EVIL = "evil.example"
EVIL_KEY = generate_signing_key("evil")


def authorised_by_mallory(version: str) -> tuple[Room, dict[str, Any]]:
    """A restricted room where Mallory (on evil.example) may invite, and Bob's join
    naming her as authoriser, signed by Bob's server only."""
    room = restricted_room(version, users={MALLORY: 100})
    room.keys.add(EVIL, verify_key_of(EVIL_KEY))
    return room, member(room, BOB, BOB, "join", join_authorised_via_users_server=MALLORY)


@pytest.mark.parametrize("version", RESTRICTED_VERSIONS)
def test_restricted_join_validly_signed_by_the_authorising_server_is_allowed(
    version: str,
) -> None:
    room, event = authorised_by_mallory(version)
    room.check(sign_event(event, EVIL, EVIL_KEY, RV[version]))


@pytest.mark.parametrize("version", RESTRICTED_VERSIONS)
def test_restricted_join_without_the_authorising_servers_signature_is_rejected(
    version: str,
) -> None:
    room, event = authorised_by_mallory(version)
    assert_rejected(room, event, "not signed by evil.example")
    event = member(room, BOB, BOB, "join", join_authorised_via_users_server="not a user")
    assert_rejected(room, event, "not a user ID")


@pytest.mark.parametrize("version", RESTRICTED_VERSIONS)
def test_restricted_join_with_a_forged_authorising_signature_is_rejected(version: str) -> None:
    room, event = authorised_by_mallory(version)
    # Signed under evil.example's key ID, but with another key.
    forged = sign_event(event, EVIL, generate_signing_key("evil"), RV[version])
    assert_rejected(room, forged, "not validly signed")
    # A signature that is not even Ed25519 over this event.
    garbage = dict(event, signatures={**event["signatures"], EVIL: {"ed25519:evil": "AAAA"}})
    assert_rejected(room, garbage, "not validly signed")
    # The authorising server's real signature, on another event (the content changed
    # after signing: here the authoriser, which the signature covers from v9).
    signed = sign_event(event, EVIL, EVIL_KEY, RV[version])
    moved = member(room, CHARLIE, CHARLIE, "join", join_authorised_via_users_server=MALLORY)
    moved["signatures"] = {**moved["signatures"], EVIL: signed["signatures"][EVIL]}
    assert_rejected(room, moved, "not validly signed")


@pytest.mark.parametrize("version", RESTRICTED_VERSIONS)
def test_restricted_join_signed_with_an_unknown_or_expired_key_is_rejected(version: str) -> None:
    room, event = authorised_by_mallory(version)
    unknown = generate_signing_key("unknown")
    assert_rejected(room, sign_event(event, EVIL, unknown, RV[version]), "not validly signed")
    signed = sign_event(event, EVIL, EVIL_KEY, RV[version])
    room.keys.add(EVIL, verify_key_of(EVIL_KEY), valid_until_ts=event["origin_server_ts"] - 1)
    assert_rejected(room, signed, "not validly signed")
    room.keys.add(EVIL, verify_key_of(EVIL_KEY), valid_until_ts=event["origin_server_ts"])
    room.check(signed)


@pytest.mark.parametrize("version", RESTRICTED_VERSIONS)
def test_recheck_of_a_verified_join_needs_only_the_signature_presence(version: str) -> None:
    # State resolution re-checks events whose signatures were verified on receipt: the
    # keys known at that time must not change its outcome.
    room, event = authorised_by_mallory(version)
    forged = sign_event(event, EVIL, generate_signing_key("evil"), RV[version])
    recheck_auth(forged, room.auth_map(forged), RV[version])
    with pytest.raises(EventRejected, match="has not signed"):
        recheck_auth(event, room.auth_map(event), RV[version])


@pytest.mark.parametrize("version", RESTRICTED_VERSIONS)
def test_restricted_join_of_invited_user_needs_no_authoriser(version: str) -> None:
    room = restricted_room(version)
    send_member(room, ALICE, BOB, "invite")
    room.join(BOB)


@pytest.mark.parametrize("version", ["7", "8"])
def test_restricted_rule_is_unknown_before_v8(version: str) -> None:
    room = restricted_room(version)
    event = member(room, BOB, BOB, "join", join_authorised_via_users_server=ALICE)
    if RV[version].restricted_join_rule:
        room.check(event)
    else:
        assert_rejected(room, event, "join rule")


@pytest.mark.parametrize("version", ["9", "10", "11", "12"])
def test_knock_restricted_from_v10(version: str) -> None:
    room = restricted_room(version, join_rule="knock_restricted")
    event = member(room, BOB, BOB, "join", join_authorised_via_users_server=ALICE)
    knock = member(room, CHARLIE, CHARLIE, "knock")
    if RV[version].knock_restricted_join_rule:
        room.check(event)
        room.check(knock)
    else:
        assert_rejected(room, event, "join rule")
        assert_rejected(room, knock, "knocking")


# --- invite ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_members_with_the_invite_level_can_invite(version: str) -> None:
    room = standard_room(version, join_rule="invite", invite=50)
    send_member(room, ALICE, BOB, "invite")
    room.join(BOB)
    assert_rejected(room, member(room, BOB, CHARLIE, "invite"), "may not invite")
    assert_rejected(room, member(room, CHARLIE, MALLORY, "invite"), "not in the room")


@pytest.mark.parametrize("version", ALL)
def test_cannot_invite_joined_or_banned_users(version: str) -> None:
    room = standard_room(version)
    room.join(BOB)
    assert_rejected(room, member(room, ALICE, BOB, "invite"), "already joined or banned")
    send_member(room, ALICE, BOB, "ban")
    assert_rejected(room, member(room, ALICE, BOB, "invite"), "already joined or banned")


# --- third-party invites -----------------------------------------------------------------------

ID_SERVER_KEY = generate_signing_key("0")
ID_SERVER_PUBLIC = encode_verify_key(verify_key_of(ID_SERVER_KEY))


def third_party_room(version: str, **invite_content: Any) -> Room:
    room = standard_room(version, join_rule="invite")
    content = {"display_name": "b...@example.org", "key_validity_url": "https://id/validity"}
    content.update(invite_content or {"public_key": ID_SERVER_PUBLIC})
    room.send(ALICE, "m.room.third_party_invite", content, "tok")
    return room


def signed_block(mxid: str = BOB, invite_id: str = "tok") -> dict[str, Any]:
    return sign_json({"mxid": mxid, "token": invite_id}, "id.example.org", ID_SERVER_KEY)


def third_party_invite(room: Room, sender: str = ALICE, **signed: Any) -> dict[str, Any]:
    block = {"display_name": "b...", "signed": signed.get("block", signed_block())}
    return member(room, sender, signed.get("target", BOB), "invite", third_party_invite=block)


@pytest.mark.parametrize("version", ["1", "6", "11", "12"])
def test_third_party_invite_signed_by_the_identity_server(version: str) -> None:
    room = third_party_room(version)
    room.check(third_party_invite(room))


def test_third_party_invite_key_may_come_from_public_keys() -> None:
    room = third_party_room("11", public_key="AAAA", public_keys=[{"public_key": ID_SERVER_PUBLIC}])
    room.check(third_party_invite(room))


@pytest.mark.parametrize("version", ["1", "11", "12"])
def test_third_party_invite_failures(version: str) -> None:
    room = third_party_room(version)
    other_key = generate_signing_key("0")
    forged = sign_json({"mxid": BOB, "token": "tok"}, "id.example.org", other_key)
    assert_rejected(room, third_party_invite(room, block=forged), "not signed")
    assert_rejected(room, third_party_invite(room, block={"mxid": BOB}), "signed.token")
    assert_rejected(room, third_party_invite(room, target=CHARLIE), "another user")
    block = signed_block(invite_id="other")
    assert_rejected(room, third_party_invite(room, block=block), "no m.room.third_party_invite")
    room.set_join_rule("public")
    room.join(CHARLIE)
    assert_rejected(room, third_party_invite(room, sender=CHARLIE), "did not make")
    room.join(BOB)
    send_member(room, ALICE, BOB, "ban")
    assert_rejected(room, third_party_invite(room), "banned")


def test_third_party_invite_without_signed_is_rejected() -> None:
    room = third_party_room("11")
    event = member(room, ALICE, BOB, "invite", third_party_invite={"display_name": "x"})
    assert_rejected(room, event, "signed")


# --- leave and kick ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_leaving_and_rejecting_invites(version: str) -> None:
    room = standard_room(version, join_rule="invite")
    assert_rejected(room, member(room, BOB, BOB, "leave"), "not in the room")
    send_member(room, ALICE, BOB, "invite")
    send_member(room, BOB, BOB, "leave")  # reject the invite
    assert_rejected(room, member(room, BOB, BOB, "leave"), "not in the room")


@pytest.mark.parametrize("version", ALL)
def test_kicking_needs_kick_level_and_a_higher_level(version: str) -> None:
    room = standard_room(version, users={BOB: 50, CHARLIE: 50})
    for user in (BOB, CHARLIE, MALLORY):
        room.join(user)
    send_member(room, BOB, MALLORY, "leave")  # 50 >= kick 50 and 50 > 0
    assert_rejected(room, member(room, BOB, CHARLIE, "leave"), "may not kick")  # equal level
    assert_rejected(room, member(room, BOB, ALICE, "leave"), "may not kick")  # higher level
    assert_rejected(room, member(room, MALLORY, BOB, "leave"), "not in the room")
    room.join(MALLORY)
    assert_rejected(room, member(room, MALLORY, BOB, "leave"), "may not kick")


@pytest.mark.parametrize("version", ALL)
def test_unbanning_needs_the_ban_level(version: str) -> None:
    room = standard_room(version, users={BOB: 50}, kick=0, ban=100)
    room.join(BOB)
    room.join(CHARLIE)
    send_member(room, ALICE, CHARLIE, "ban")
    assert_rejected(room, member(room, BOB, CHARLIE, "leave"), "unban")
    send_member(room, ALICE, CHARLIE, "leave")


# --- ban ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_banning(version: str) -> None:
    room = standard_room(version, users={BOB: 40}, ban=50)
    room.join(BOB)
    assert_rejected(room, member(room, BOB, CHARLIE, "ban"), "may not ban")
    assert_rejected(room, member(room, BOB, ALICE, "ban"), "may not ban")
    assert_rejected(room, member(room, CHARLIE, BOB, "ban"), "not in the room")
    send_member(room, ALICE, CHARLIE, "ban")  # banning someone not in the room is fine
    send_member(room, ALICE, BOB, "ban")


# --- knock (v7+) ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KNOCK_VERSIONS)
def test_knocking(version: str) -> None:
    room = standard_room(version, join_rule="knock")
    assert_rejected(room, member(room, BOB, CHARLIE, "knock"), "as themselves")
    send_member(room, BOB, BOB, "knock")
    send_member(room, BOB, BOB, "leave")  # withdraw the knock
    send_member(room, BOB, BOB, "knock")
    send_member(room, ALICE, BOB, "invite")  # accept the knock
    assert_rejected(room, member(room, BOB, BOB, "knock"), "invited")
    room.join(BOB)
    assert_rejected(room, member(room, BOB, BOB, "knock"), "joined")
    send_member(room, ALICE, CHARLIE, "ban")
    assert_rejected(room, member(room, CHARLIE, CHARLIE, "knock"), "banned")


@pytest.mark.parametrize("version", KNOCK_VERSIONS)
def test_knocking_needs_a_knock_join_rule(version: str) -> None:
    room = standard_room(version, join_rule="public")
    assert_rejected(room, member(room, BOB, BOB, "knock"), "knocking")


@pytest.mark.parametrize("version", ["1", "6"])
def test_knock_is_an_unknown_membership_before_v7(version: str) -> None:
    room = standard_room(version, join_rule="knock")
    assert_rejected(room, member(room, BOB, BOB, "knock"), "unknown membership")
