"""PUT /rooms/{roomId}/state/m.room.member/{userId}: the membership endpoints' actions and
checks, with the client's own content kept."""

from __future__ import annotations

import json
from typing import Any

from rooms.models import Event, RoomMembership
from rooms.tests.base import V3, RoomTestCase, q

ALICE = "@alice:test.local"
BOB = "@bob:test.local"
MALLORY = "@mallory:test.local"
AUTHORISER = "join_authorised_via_users_server"


class StateMemberTests(RoomTestCase):
    def membership(self, room_id: str, user_id: str) -> str | None:
        return (
            RoomMembership.objects.filter(room__room_id=room_id, user_id=user_id)
            .values_list("membership", flat=True)
            .first()
        )

    def put_member(self, user: Any, room_id: str, target: str, content: dict[str, Any]) -> Any:
        return self.set_state(user, room_id, "m.room.member", content, target)

    def member_content(self, event_id: str) -> dict[str, Any]:
        content: dict[str, Any] = json.loads(Event.objects.get(event_id=event_id).json)["content"]
        return content

    def restricted_room(self, join_rule: str = "restricted") -> tuple[str, str]:
        """Alice's room whose join rule lets in members of her other room (Bob only)."""
        allowed = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, allowed)
        room = self.create_room(self.alice)
        rule = {
            "join_rule": join_rule,
            "allow": [{"type": "m.room_membership", "room_id": allowed}],
        }
        response = self.set_state(self.alice, room, "m.room.join_rules", rule)
        self.assertEqual(response.status_code, 200, response.body)
        return room, allowed

    def test_restricted_join_naming_an_authoriser_is_refused_to_outsiders(self) -> None:
        for join_rule in ("restricted", "knock_restricted"):
            with self.subTest(join_rule=join_rule):
                room, _ = self.restricted_room(join_rule)
                content = {"membership": "join", AUTHORISER: ALICE}
                response = self.put_member(self.mallory, room, MALLORY, content)
                self.assert_matrix_error(response, 403, "M_FORBIDDEN")
                self.assertIsNone(self.membership(room, MALLORY))

    def test_restricted_join_is_authorised_by_the_server_not_the_client(self) -> None:
        room, _ = self.restricted_room()
        content = {"membership": "join", AUTHORISER: MALLORY, "org.example.custom": "kept"}
        response = self.put_member(self.bob, room, BOB, content)
        self.assertEqual(response.status_code, 200, response.body)
        stored = self.member_content(response.body["event_id"])
        self.assertEqual(stored[AUTHORISER], ALICE)  # the server's choice
        self.assertEqual(stored["org.example.custom"], "kept")
        self.assertEqual(self.membership(room, BOB), "join")

    def test_custom_keys_of_a_join_survive(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        content = {"membership": "join", "displayname": "Bobby", "org.example.flag": [1, 2]}
        response = self.put_member(self.bob, room, BOB, content)
        self.assertEqual(response.status_code, 200, response.body)
        event = self.api(self.bob).get(
            f"{V3}/rooms/{q(room)}/state/m.room.member/{q(BOB)}?format=event"
        )
        self.assertEqual(event.body["content"], content)

    def test_join_without_profile_gets_the_users_profile(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        response = self.put_member(self.bob, room, BOB, {"membership": "join"})
        self.assertEqual(self.member_content(response.body["event_id"])["displayname"], "bob")

    def test_invite_of_an_unknown_user_is_refused(self) -> None:
        room = self.create_room(self.alice)
        response = self.put_member(self.alice, room, "@nobody:test.local", {"membership": "invite"})
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")
        response = self.put_member(self.alice, room, "@bob:elsewhere", {"membership": "invite"})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertFalse(Event.objects.filter(type="m.room.member", membership="invite").exists())

    def test_invite_keeps_custom_keys(self) -> None:
        room = self.create_room(self.alice)
        content = {"membership": "invite", "reason": "tea", "org.example.note": "x"}
        response = self.put_member(self.alice, room, BOB, content)
        self.assertEqual(response.status_code, 200, response.body)
        stored = self.member_content(response.body["event_id"])
        self.assertEqual(stored["org.example.note"], "x")
        self.assertEqual(stored["reason"], "tea")
        self.assertEqual(self.membership(room, BOB), "invite")

    def test_kick_of_a_user_not_in_the_room_is_refused(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        response = self.put_member(self.alice, room, BOB, {"membership": "leave"})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertIsNone(self.membership(room, BOB))

    def test_kick_ban_and_unban_through_the_state_endpoint(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        kicked = self.put_member(self.alice, room, BOB, {"membership": "leave", "reason": "r"})
        self.assertEqual(kicked.status_code, 200, kicked.body)
        self.assertEqual(self.membership(room, BOB), "leave")
        banned = self.put_member(self.alice, room, BOB, {"membership": "ban"})
        self.assertEqual(banned.status_code, 200, banned.body)
        self.assertEqual(self.membership(room, BOB), "ban")
        self.assert_matrix_error(self.join(self.bob, room), 403, "M_FORBIDDEN")
        unbanned = self.put_member(self.alice, room, BOB, {"membership": "leave"})
        self.assertEqual(unbanned.status_code, 200, unbanned.body)
        self.assertEqual(self.membership(room, BOB), "leave")

    def test_a_member_cannot_kick_or_ban_without_power(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        self.join(self.mallory, room)
        for membership in ("leave", "ban"):
            response = self.put_member(self.mallory, room, BOB, {"membership": membership})
            self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertEqual(self.membership(room, BOB), "join")

    def test_nobody_joins_or_knocks_for_someone_else(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        for membership in ("join", "knock"):
            response = self.put_member(self.alice, room, BOB, {"membership": membership})
            self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertIsNone(self.membership(room, BOB))

    def test_leave_through_the_state_endpoint(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        response = self.put_member(self.bob, room, BOB, {"membership": "leave", "reason": "bye"})
        self.assertEqual(response.status_code, 200, response.body)
        self.assertEqual(self.member_content(response.body["event_id"])["reason"], "bye")
        self.assertEqual(self.membership(room, BOB), "leave")

    def test_malformed_membership_is_bad_json(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        for content in ({}, {"membership": 1}, {"membership": "lurk"}):
            response = self.put_member(self.alice, room, ALICE, content)
            self.assert_matrix_error(response, 400, "M_BAD_JSON")
        response = self.put_member(self.alice, room, "not-a-user", {"membership": "invite"})
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")

    def test_same_content_again_returns_the_current_event(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        content = {"membership": "join", "displayname": "Bobby"}
        first = self.put_member(self.bob, room, BOB, content)
        second = self.put_member(self.bob, room, BOB, content)
        self.assertEqual(first.body["event_id"], second.body["event_id"])
