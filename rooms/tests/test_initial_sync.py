from __future__ import annotations

from rooms.tests.base import V3, RoomTestCase, q


class RoomInitialSyncTests(RoomTestCase):
    def test_member_gets_state_and_latest_messages(self) -> None:
        room = self.create_room(self.alice, preset="public_chat", name="Preview")
        for i in range(3):
            self.send_ok(self.alice, room, f"m{i}")
        body = self.api(self.alice).get(f"{V3}/rooms/{q(room)}/initialSync").body
        self.assertEqual(body["membership"], "join")
        chunk = [e for e in body["messages"]["chunk"] if e["type"] == "m.room.message"]
        self.assertEqual([e["content"]["body"] for e in chunk], ["m0", "m1", "m2"])
        self.assertIn("m.room.name", {e["type"] for e in body["state"]})
        self.assertEqual(body["visibility"], "private")

    def test_world_readable_room_can_be_previewed(self) -> None:
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
        self.send_ok(self.alice, room, "hello visitors")
        body = self.api(self.bob).get(f"{V3}/rooms/{q(room)}/initialSync").body
        self.assertNotIn("membership", body)
        self.assertIn(
            "hello visitors", [e["content"].get("body") for e in body["messages"]["chunk"]]
        )

    def test_private_room_is_forbidden(self) -> None:
        room = self.create_room(self.alice)
        response = self.api(self.mallory).get(f"{V3}/rooms/{q(room)}/initialSync")
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")

    def test_a_user_who_left_sees_the_room_as_it_was(self) -> None:
        room = self.create_room(self.alice, preset="public_chat", name="Then")
        self.join(self.bob, room)
        self.leave(self.bob, room)
        self.join(self.mallory, room)
        self.set_state(self.alice, room, "m.room.name", {"name": "Now"})
        body = self.api(self.bob).get(f"{V3}/rooms/{q(room)}/initialSync").body
        self.assertEqual(body["membership"], "leave")
        # No presence: a user who left shares no room with the members any more.
        self.assertEqual(body["presence"], [])
        members = {e["state_key"] for e in body["state"] if e["type"] == "m.room.member"}
        self.assertNotIn(self.mallory.user_id, members)
        [name] = [e for e in body["state"] if e["type"] == "m.room.name"]
        self.assertEqual(name["content"], {"name": "Then"})


class UserDirectoryTests(RoomTestCase):
    URL = f"{V3}/user_directory/search"

    def test_finds_room_mates_and_members_of_public_rooms_only(self) -> None:
        shared = self.create_room(self.alice)
        self.invite(self.alice, shared, self.bob)
        self.join(self.bob, shared)
        self.api(self.mallory).put(
            f"{V3}/profile/@mallory:test.local/displayname", {"displayname": "Mallory Bobbins"}
        )
        loner = self.make_user("bobby")  # in no room: not visible
        self.assertTrue(loner)
        results = self.api(self.alice).post(self.URL, {"search_term": "bob"}).body
        self.assertEqual([r["user_id"] for r in results["results"]], ["@bob:test.local"])
        public = self.create_room(self.mallory, preset="public_chat")
        self.assertTrue(public)
        results = self.api(self.alice).post(self.URL, {"search_term": "BOB"}).body
        self.assertEqual(
            {r["user_id"] for r in results["results"]}, {"@bob:test.local", "@mallory:test.local"}
        )
        mallory = next(r for r in results["results"] if r["user_id"] == "@mallory:test.local")
        self.assertEqual(mallory["display_name"], "Mallory Bobbins")

    def test_the_searcher_is_not_a_result(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        results = self.api(self.alice).post(self.URL, {"search_term": "test.local"}).body
        self.assertEqual([r["user_id"] for r in results["results"]], ["@bob:test.local"])

    def test_local_users_appear_with_their_profile_not_a_room_name(self) -> None:
        room = self.create_room(self.alice)
        self.invite(self.alice, room, self.bob)
        self.join(self.bob, room)
        self.set_state(
            self.alice,
            room,
            "m.room.member",
            {"membership": "join", "displayname": "Alice in this room"},
            state_key="@alice:test.local",
        )
        results = self.api(self.bob).post(self.URL, {"search_term": "alice"}).body["results"]
        self.assertEqual(results, [{"user_id": "@alice:test.local", "display_name": "alice"}])

    def test_limit_and_bad_input(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        for user in (self.bob, self.mallory):
            self.join(user, room)
        body = self.api(self.alice).post(self.URL, {"search_term": "test.local", "limit": 1}).body
        self.assertEqual((len(body["results"]), body["limited"]), (1, True))
        self.assert_matrix_error(self.api(self.alice).post(self.URL, {}), 400, "M_MISSING_PARAM")
        self.assert_matrix_error(
            self.api(self.alice).post(self.URL, {"search_term": 5}), 400, "M_BAD_JSON"
        )
