from __future__ import annotations

import json

from rooms.tests.base import V3, RoomTestCase, q


class MessagesTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, self.room)
        self.sent = [self.send_ok(self.alice, self.room, f"m{i}") for i in range(7)]

    def test_backwards_pagination_in_pages(self) -> None:
        first = self.messages(self.bob, self.room, "dir=b&limit=3").body
        self.assertEqual([e["content"]["body"] for e in first["chunk"]], ["m6", "m5", "m4"])
        second = self.messages(self.bob, self.room, f"dir=b&limit=3&from={first['end']}").body
        self.assertEqual([e["content"]["body"] for e in second["chunk"]], ["m3", "m2", "m1"])
        self.assertEqual(second["start"], first["end"])

    def test_forwards_from_an_end_token(self) -> None:
        back = self.messages(self.bob, self.room, "dir=b&limit=3").body
        forward = self.messages(self.bob, self.room, f"dir=f&limit=10&from={back['end']}").body
        self.assertEqual([e["content"]["body"] for e in forward["chunk"]], ["m4", "m5", "m6"])
        self.assertNotIn("end", forward)  # nothing more

    def test_forwards_from_the_start(self) -> None:
        chunk = self.messages(self.bob, self.room, "dir=f&limit=2").body["chunk"]
        self.assertEqual(chunk[0]["type"], "m.room.create")

    def test_to_token_stops_pagination(self) -> None:
        top = self.messages(self.bob, self.room, "dir=b&limit=2").body
        rest = self.messages(self.bob, self.room, f"dir=b&limit=50&from={top['end']}").body
        stop = self.messages(self.bob, self.room, "dir=b&limit=3").body["end"]
        bounded = self.messages(self.bob, self.room, f"dir=b&limit=50&to={stop}").body
        self.assertEqual(len(bounded["chunk"]), 3)
        self.assertGreater(len(rest["chunk"]), 3)

    def test_type_filter(self) -> None:
        event_filter = q(json.dumps({"types": ["m.room.mem*"]}))
        chunk = self.messages(self.bob, self.room, f"dir=b&filter={event_filter}").body["chunk"]
        self.assertTrue(chunk)
        self.assertEqual({e["type"] for e in chunk}, {"m.room.member"})
        event_filter = q(json.dumps({"not_types": ["m.room.message"], "limit": 2}))
        chunk = self.messages(self.bob, self.room, f"dir=b&filter={event_filter}").body["chunk"]
        self.assertEqual(len(chunk), 2)
        self.assertNotIn("m.room.message", {e["type"] for e in chunk})

    def test_lazy_loaded_members(self) -> None:
        event_filter = q(json.dumps({"lazy_load_members": True, "types": ["m.room.message"]}))
        body = self.messages(self.bob, self.room, f"dir=b&limit=3&filter={event_filter}").body
        self.assertEqual([e["state_key"] for e in body["state"]], ["@alice:test.local"])

    def test_lazy_loaded_members_of_the_rooms_first_events(self) -> None:
        # The creator's events before their own join: their membership comes from later.
        room = self.create_room(self.alice)
        event_filter = q(json.dumps({"lazy_load_members": True}))
        body = self.messages(self.alice, room, f"dir=f&limit=3&filter={event_filter}").body
        self.assertEqual(body["chunk"][0]["type"], "m.room.create")
        self.assertEqual(
            [(e["state_key"], e["content"]["membership"]) for e in body["state"]],
            [("@alice:test.local", "join")],
        )

    def test_bad_parameters(self) -> None:
        for query in ("dir=x", "limit=abc", "from=garbage", "filter=%7Bnot", "filter=%5B%5D"):
            response = self.messages(self.bob, self.room, query)
            self.assertEqual(response.status_code, 400, query)

    def test_non_member_is_forbidden(self) -> None:
        private = self.create_room(self.alice)
        self.assert_matrix_error(self.messages(self.mallory, private), 403, "M_FORBIDDEN")


class HistoryVisibilityTests(RoomTestCase):
    def room_with(self, visibility: str) -> str:
        room = self.create_room(self.alice, preset="public_chat")
        self.set_state(
            self.alice, room, "m.room.history_visibility", {"history_visibility": visibility}
        )
        self.send_ok(self.alice, room, "before")
        return room

    def test_shared_shows_earlier_history_to_new_members(self) -> None:
        room = self.room_with("shared")
        self.join(self.bob, room)
        self.assertIn("before", self.timeline_bodies(self.bob, room))

    def test_joined_hides_earlier_history(self) -> None:
        room = self.room_with("joined")
        self.join(self.bob, room)
        self.send_ok(self.alice, room, "after")
        self.assertEqual(self.timeline_bodies(self.bob, room), ["after"])

    def test_invited_shows_history_from_the_invite(self) -> None:
        room = self.room_with("invited")
        self.invite(self.alice, room, self.bob)
        self.send_ok(self.alice, room, "while invited")
        self.join(self.bob, room)
        self.assertEqual(self.timeline_bodies(self.bob, room), ["while invited"])

    def test_world_readable_lets_anyone_read(self) -> None:
        room = self.room_with("world_readable")
        self.assertEqual(self.timeline_bodies(self.mallory, room), ["before"])

    def test_a_user_who_left_sees_nothing_after_leaving(self) -> None:
        room = self.room_with("shared")
        self.join(self.bob, room)
        self.send_ok(self.alice, room, "while there")
        self.leave(self.bob, room)
        self.send_ok(self.alice, room, "after leaving")
        bodies = self.timeline_bodies(self.bob, room)
        self.assertIn("while there", bodies)
        self.assertNotIn("after leaving", bodies)

    def test_events_after_leaving_are_hidden_everywhere(self) -> None:
        room = self.room_with("shared")
        self.join(self.bob, room)
        self.leave(self.bob, room)
        later = self.send_ok(self.alice, room, "after")
        for path in (f"event/{q(later)}", f"context/{q(later)}"):
            response = self.api(self.bob).get(f"{V3}/rooms/{q(room)}/{path}")
            self.assert_matrix_error(response, 404, "M_NOT_FOUND")
        relations = self.api(self.bob).get(
            f"/_matrix/client/v1/rooms/{q(room)}/relations/{q(later)}"
        )
        self.assert_matrix_error(relations, 404, "M_NOT_FOUND")

    def test_event_endpoint_hides_invisible_events(self) -> None:
        room = self.room_with("joined")
        hidden = self.send_ok(self.alice, room, "secret")
        self.join(self.bob, room)
        response = self.api(self.bob).get(f"{V3}/rooms/{q(room)}/event/{q(hidden)}")
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")
        response = self.api(self.mallory).get(f"{V3}/rooms/{q(room)}/event/{q(hidden)}")
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")


class ContextTests(RoomTestCase):
    def test_context_around_an_event(self) -> None:
        room = self.create_room(self.alice, preset="public_chat", name="Ctx")
        ids = [self.send_ok(self.alice, room, f"c{i}") for i in range(5)]
        body = self.api(self.alice).get(f"{V3}/rooms/{q(room)}/context/{q(ids[2])}?limit=4").body
        self.assertEqual(body["event"]["event_id"], ids[2])
        self.assertEqual([e["event_id"] for e in body["events_before"]], [ids[1], ids[0]])
        self.assertEqual([e["event_id"] for e in body["events_after"]], [ids[3], ids[4]])
        self.assertIn("m.room.name", {e["type"] for e in body["state"]})
        after = self.messages(self.alice, room, f"dir=f&from={body['end']}").body["chunk"]
        self.assertEqual(after, [])

    def test_context_of_unknown_event(self) -> None:
        room = self.create_room(self.alice)
        response = self.api(self.alice).get(f"{V3}/rooms/{q(room)}/context/{q('$nope')}")
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")


class MembersTests(RoomTestCase):
    def test_members_with_filters_and_at(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        token = self.messages(self.alice, room, "dir=b&limit=1").body["start"]
        self.invite(self.alice, room, self.mallory)
        url = f"{V3}/rooms/{q(room)}/members"
        everyone = self.api(self.alice).get(url).body["chunk"]
        self.assertEqual(len(everyone), 3)
        joined = self.api(self.alice).get(url + "?membership=join").body["chunk"]
        self.assertEqual({e["state_key"] for e in joined}, {"@alice:test.local", "@bob:test.local"})
        not_join = self.api(self.alice).get(url + "?not_membership=join").body["chunk"]
        self.assertEqual([e["state_key"] for e in not_join], ["@mallory:test.local"])
        before = self.api(self.alice).get(url + f"?at={token}").body["chunk"]
        self.assertEqual(len(before), 2)

    def history_room(self, visibility: str) -> tuple[str, str]:
        """A public room with a point (token) from before Mallory joined; Bob was in it
        then and left before she joined."""
        room = self.create_room(self.alice, preset="public_chat")
        self.set_state(
            self.alice, room, "m.room.history_visibility", {"history_visibility": visibility}
        )
        self.join(self.bob, room)
        self.send_ok(self.alice, room, "before")
        token = self.messages(self.alice, room, "dir=b&limit=1").body["start"]
        self.leave(self.bob, room)
        self.join(self.mallory, room)
        return room, token

    def test_members_at_a_point_the_reader_could_not_see_is_forbidden(self) -> None:
        for visibility in ("joined", "invited"):
            with self.subTest(visibility=visibility):
                room, token = self.history_room(visibility)
                url = f"{V3}/rooms/{q(room)}/members?at={token}"
                self.assert_matrix_error(self.api(self.mallory).get(url), 403, "M_FORBIDDEN")
                self.assertEqual(self.api(self.alice).get(url).status_code, 200)

    def test_members_at_a_point_of_shared_history_is_served(self) -> None:
        room, token = self.history_room("shared")
        url = f"{V3}/rooms/{q(room)}/members?at={token}"
        response = self.api(self.mallory).get(url)
        self.assertEqual(response.status_code, 200, response.body)
        members = {e["state_key"]: e["content"]["membership"] for e in response.body["chunk"]}
        self.assertEqual(members, {"@alice:test.local": "join", "@bob:test.local": "join"})
