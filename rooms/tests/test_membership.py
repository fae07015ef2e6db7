from __future__ import annotations

from rooms.models import Event, RoomMembership
from rooms.tests.base import V3, RoomTestCase, q


class MembershipTests(RoomTestCase):
    def membership(self, room_id: str, user_id: str) -> str | None:
        return (
            RoomMembership.objects.filter(room__room_id=room_id, user_id=user_id)
            .values_list("membership", flat=True)
            .first()
        )

    def test_join_public_room_by_id_and_alias(self) -> None:
        room = self.create_room(self.alice, preset="public_chat", room_alias_name="pub")
        response = self.api(self.bob).post(f"{V3}/join/{q('#pub:test.local')}", {})
        self.assertEqual(response.body, {"room_id": room})
        response = self.api(self.mallory).post(f"{V3}/rooms/{q(room)}/join", {})
        self.assertEqual(response.body, {"room_id": room})
        self.assertEqual(self.membership(room, "@mallory:test.local"), "join")
        joined = self.api(self.bob).get(f"{V3}/joined_rooms").body["joined_rooms"]
        self.assertEqual(joined, [room])

    def test_join_carries_profile(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.api(self.bob).put(
            f"{V3}/profile/@bob:test.local/displayname", {"displayname": "Bob B"}
        )
        self.join(self.bob, room)
        members = self.api(self.alice).get(f"{V3}/rooms/{q(room)}/joined_members").body["joined"]
        self.assertEqual(members["@bob:test.local"]["display_name"], "Bob B")

    def test_join_body_keys_go_into_the_member_event(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        body = {
            "reason": "hi",
            "foo": "bar",
            "displayname": "Bob here",
            "membership": "leave",
            "join_authorised_via_users_server": "@alice:test.local",
        }
        self.api(self.bob).post(f"{V3}/rooms/{q(room)}/join", body)
        member = (
            self.api(self.alice)
            .get(f"{V3}/rooms/{q(room)}/state/m.room.member/@bob:test.local")
            .body
        )
        self.assertEqual(
            member, {"membership": "join", "reason": "hi", "foo": "bar", "displayname": "Bob here"}
        )
        again = self.api(self.bob).post(f"{V3}/rooms/{q(room)}/join", {"foo": "baz"})
        self.assertEqual(again.status_code, 200)
        member = (
            self.api(self.alice)
            .get(f"{V3}/rooms/{q(room)}/state/m.room.member/@bob:test.local")
            .body
        )
        self.assertEqual(member["foo"], "baz")
        bad = self.api(self.mallory).post(f"{V3}/rooms/{q(room)}/join", {"displayname": 5})
        self.assert_matrix_error(bad, 400, "M_BAD_JSON")
        self.assertIsNone(self.membership(room, "@mallory:test.local"))

    def test_joined_members_is_refused_once_left(self) -> None:
        # As from Synapse (and as Complement expects): only current members may ask.
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        url = f"{V3}/rooms/{q(room)}/joined_members"
        self.assertEqual(self.api(self.bob).get(url).status_code, 200)
        self.leave(self.bob, room)
        self.join(self.mallory, room)
        self.assert_matrix_error(self.api(self.bob).get(url), 403, "M_FORBIDDEN")

    def test_joined_members_is_refused_to_peekers(self) -> None:
        room = self.create_room(
            self.alice,
            preset="public_chat",
            initial_state=[
                {
                    "type": "m.room.history_visibility",
                    "content": {"history_visibility": "world_readable"},
                }
            ],
        )
        response = self.api(self.bob).get(f"{V3}/rooms/{q(room)}/joined_members")
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")

    def test_invite_only_room_needs_an_invite(self) -> None:
        room = self.create_room(self.alice)
        self.assert_matrix_error(self.join(self.bob, room), 403, "M_FORBIDDEN")
        self.assertEqual(self.invite(self.alice, room, self.bob).status_code, 200)
        self.assertEqual(self.membership(room, "@bob:test.local"), "invite")
        self.assertEqual(self.join(self.bob, room).status_code, 200)
        self.assertEqual(self.membership(room, "@bob:test.local"), "join")

    def test_unknown_alias_and_room(self) -> None:
        response = self.api(self.bob).post(f"{V3}/join/{q('#none:test.local')}", {})
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")
        self.assert_matrix_error(self.join(self.bob, "!none:test.local"), 404, "M_NOT_FOUND")
        response = self.api(self.bob).post(f"{V3}/join/not-an-id", {})
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")

    def test_invite_errors(self) -> None:
        room = self.create_room(self.alice)
        response = self.api(self.alice).post(f"{V3}/rooms/{q(room)}/invite", {"user_id": "bob"})
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")
        response = self.api(self.alice).post(f"{V3}/rooms/{q(room)}/invite", {})
        self.assert_matrix_error(response, 400, "M_MISSING_PARAM")
        self.assert_matrix_error(self.invite(self.mallory, room, self.bob), 403, "M_FORBIDDEN")
        self.invite(self.alice, room, self.bob)
        self.join(self.bob, room)
        self.assert_matrix_error(self.invite(self.alice, room, self.bob), 403, "M_FORBIDDEN")

    def test_leave_and_reject_invite(self) -> None:
        room = self.create_room(self.alice)
        self.invite(self.alice, room, self.bob)
        self.assertEqual(self.leave(self.bob, room).status_code, 200)  # rejects the invite
        self.assertEqual(self.membership(room, "@bob:test.local"), "leave")
        self.assertEqual(self.leave(self.bob, room).status_code, 200)  # already left: no-op

    def test_reject_invite_to_a_room_its_local_members_all_left(self) -> None:
        room = self.create_room(self.alice)
        self.invite(self.alice, room, self.bob)
        self.assertEqual(self.leave(self.alice, room).status_code, 200)
        response = self.leave(self.bob, room)
        self.assertEqual(response.status_code, 200, response.body)
        self.assertEqual(self.membership(room, "@bob:test.local"), "leave")
        # An event of the room (after the invite), not a rejection kept to this server.
        events = Event.objects.filter(room__room_id=room, state_key="@bob:test.local")
        self.assertEqual(events.filter(outlier=False).count(), 2)

    def test_kick(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        url = f"{V3}/rooms/{q(room)}/kick"
        self.assert_matrix_error(
            self.api(self.bob).post(url, {"user_id": "@alice:test.local"}), 403, "M_FORBIDDEN"
        )
        response = self.api(self.alice).post(url, {"user_id": "@bob:test.local", "reason": "bye"})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(self.membership(room, "@bob:test.local"), "leave")
        self.assert_matrix_error(
            self.api(self.alice).post(url, {"user_id": "@bob:test.local"}), 403, "M_FORBIDDEN"
        )  # no longer in the room

    def test_ban_and_unban(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        ban = self.api(self.alice).post(f"{V3}/rooms/{q(room)}/ban", {"user_id": "@bob:test.local"})
        self.assertEqual(ban.status_code, 200)
        self.assert_matrix_error(self.join(self.bob, room), 403, "M_FORBIDDEN")
        unban = self.api(self.alice).post(
            f"{V3}/rooms/{q(room)}/unban", {"user_id": "@bob:test.local"}
        )
        self.assertEqual(unban.status_code, 200)
        self.assertEqual(self.join(self.bob, room).status_code, 200)
        again = self.api(self.alice).post(
            f"{V3}/rooms/{q(room)}/unban", {"user_id": "@bob:test.local"}
        )
        self.assert_matrix_error(again, 403, "M_FORBIDDEN")

    def test_knock_then_invite(self) -> None:
        room = self.create_room(
            self.alice,
            initial_state=[{"type": "m.room.join_rules", "content": {"join_rule": "knock"}}],
        )
        response = self.api(self.bob).post(f"{V3}/knock/{q(room)}", {"reason": "let me in"})
        self.assertEqual(response.body, {"room_id": room})
        self.assertEqual(self.membership(room, "@bob:test.local"), "knock")
        self.invite(self.alice, room, self.bob)
        self.assertEqual(self.join(self.bob, room).status_code, 200)

    def test_knock_refused_when_room_is_not_knockable(self) -> None:
        room = self.create_room(self.alice)
        response = self.api(self.bob).post(f"{V3}/knock/{q(room)}", {})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")

    def test_restricted_join_through_an_allowed_room(self) -> None:
        space = self.create_room(self.alice, preset="public_chat")
        room = self.create_room(
            self.alice,
            initial_state=[
                {
                    "type": "m.room.join_rules",
                    "content": {
                        "join_rule": "restricted",
                        "allow": [{"type": "m.room_membership", "room_id": space}],
                    },
                }
            ],
        )
        self.assert_matrix_error(self.join(self.bob, room), 403, "M_FORBIDDEN")
        self.join(self.bob, space)
        self.assertEqual(self.join(self.bob, room).status_code, 200)
        state = (
            self.api(self.bob)
            .get(f"{V3}/rooms/{q(room)}/state/m.room.member/{q('@bob:test.local')}")
            .body
        )
        self.assertEqual(state["join_authorised_via_users_server"], "@alice:test.local")

    def test_forget(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        url = f"{V3}/rooms/{q(room)}/forget"
        self.assert_matrix_error(self.api(self.bob).post(url, {}), 400, "M_UNKNOWN")
        self.leave(self.bob, room)
        self.assertEqual(self.api(self.bob).post(url, {}).status_code, 200)
        response = self.api(self.bob).get(f"{V3}/rooms/{q(room)}/messages")
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")

    def test_remote_invite_is_refused_until_federation(self) -> None:
        room = self.create_room(self.alice)
        response = self.api(self.alice).post(
            f"{V3}/rooms/{q(room)}/invite", {"user_id": "@carol:elsewhere.example"}
        )
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")


class MutualRoomsTests(RoomTestCase):
    URL = "/_matrix/client/v1/mutual_rooms"

    def test_rooms_both_users_are_joined_to(self) -> None:
        shared = sorted(self.create_room(self.alice, preset="public_chat") for _ in range(2))
        for room in shared:
            self.join(self.bob, room)
        self.create_room(self.alice)  # alice alone
        left = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, left)
        self.leave(self.bob, left)
        response = self.api(self.alice).get(f"{self.URL}?user_id={q('@bob:test.local')}")
        self.assertEqual(response.body, {"joined": shared, "count": 2})
        nobody = self.api(self.alice).get(f"{self.URL}?user_id={q('@nobody:test.local')}")
        self.assertEqual(nobody.body, {"joined": [], "count": 0})

    def test_bad_requests(self) -> None:
        api = self.api(self.alice)
        self.assert_matrix_error(api.get(self.URL), 400, "M_MISSING_PARAM")
        self.assert_matrix_error(api.get(f"{self.URL}?user_id=bob"), 400, "M_INVALID_PARAM")
        own = f"{self.URL}?user_id={q('@alice:test.local')}"
        self.assert_matrix_error(api.get(own), 400, "M_INVALID_PARAM")
        bob = f"{self.URL}?user_id={q('@bob:test.local')}&from=x"
        self.assert_matrix_error(api.get(bob), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(self.api().get(self.URL), 401, "M_MISSING_TOKEN")
