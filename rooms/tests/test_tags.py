"""Room tags: GET/PUT/DELETE /user/{userId}/rooms/{roomId}/tags[/{tag}], seen in /sync
as the room's m.tag account data."""

from __future__ import annotations

from rooms.tests.base import V3, RoomTestCase, q


class TagsTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room_id = self.create_room(self.alice)
        self.base = f"{V3}/user/{q(self.alice.user_id)}/rooms/{q(self.room_id)}/tags"

    def test_add_list_and_remove(self) -> None:
        api = self.api(self.alice)
        self.assertEqual(api.get(self.base).body, {"tags": {}})
        self.assertEqual(api.put(f"{self.base}/m.favourite", {"order": 0.25}).status_code, 200)
        self.assertEqual(api.put(f"{self.base}/u.work", {}).status_code, 200)
        self.assertEqual(
            api.get(self.base).body, {"tags": {"m.favourite": {"order": 0.25}, "u.work": {}}}
        )
        room = self.sync(self.alice)["rooms"]["join"][self.room_id]
        tags = [e for e in room["account_data"]["events"] if e["type"] == "m.tag"]
        self.assertEqual(tags[0]["content"]["tags"]["m.favourite"], {"order": 0.25})
        self.assertEqual(api.delete(f"{self.base}/m.favourite").status_code, 200)
        self.assertEqual(api.delete(f"{self.base}/never.set").status_code, 200)
        self.assertEqual(api.get(self.base).body, {"tags": {"u.work": {}}})

    def test_bad_requests(self) -> None:
        api = self.api(self.alice)
        self.assert_matrix_error(
            api.put(f"{self.base}/t", {"order": "first"}), 400, "M_INVALID_PARAM"
        )
        self.assert_matrix_error(api.put(f"{self.base}/{'x' * 300}", {}), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(api.put(f"{self.base}/t", [1]), 400, "M_BAD_JSON")
        other = f"{V3}/user/{q(self.bob.user_id)}/rooms/{q(self.room_id)}/tags"
        self.assert_matrix_error(api.get(other), 403, "M_FORBIDDEN")
