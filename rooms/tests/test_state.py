from __future__ import annotations

from rooms.models import Event
from rooms.tests.base import V3, RoomTestCase, q


class StateTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(self.alice, preset="public_chat", name="Start")
        self.join(self.bob, self.room)

    def url(self, event_type: str, state_key: str = "") -> str:
        return f"{V3}/rooms/{q(self.room)}/state/{event_type}/{q(state_key)}"

    def test_put_then_get_content(self) -> None:
        response = self.set_state(self.alice, self.room, "m.room.topic", {"topic": "New"})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(self.api(self.bob).get(self.url("m.room.topic")).body, {"topic": "New"})

    def test_get_with_empty_state_key_as_clients_send_it(self) -> None:
        response = self.api(self.bob).get(f"{V3}/rooms/{q(self.room)}/state/m.room.name/")
        self.assertEqual(response.body, {"name": "Start"})
        bare = self.client.get(
            f"{V3}/rooms/{q(self.room)}/state/m.room.name",
            headers={"Authorization": f"Bearer {self.bob.test_token}"},
        )
        self.assertEqual(bare.json(), {"name": "Start"})

    def test_format_event(self) -> None:
        response = self.api(self.bob).get(self.url("m.room.name") + "?format=event")
        self.assertEqual(response.body["type"], "m.room.name")
        self.assertIn("event_id", response.body)

    def test_prev_content_in_unsigned(self) -> None:
        self.set_state(self.alice, self.room, "m.room.name", {"name": "Second"})
        events = self.api(self.bob).get(f"{V3}/rooms/{q(self.room)}/state").body
        name = next(e for e in events if e["type"] == "m.room.name")
        self.assertEqual(name["unsigned"]["prev_content"], {"name": "Start"})

    def test_missing_state_is_404(self) -> None:
        response = self.api(self.bob).get(self.url("m.room.avatar"))
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")

    def test_custom_state_key(self) -> None:
        self.set_state(self.alice, self.room, "org.example.widget", {"a": 1}, "w1")
        self.assertEqual(
            self.api(self.bob).get(self.url("org.example.widget", "w1")).body, {"a": 1}
        )

    def test_insufficient_power_for_state(self) -> None:
        response = self.set_state(self.bob, self.room, "m.room.name", {"name": "Bob's"})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertEqual(self.api(self.bob).get(self.url("m.room.name")).body, {"name": "Start"})

    def test_same_content_twice_sends_one_event(self) -> None:
        first = self.set_state(self.alice, self.room, "m.room.topic", {"topic": "Same"})
        second = self.set_state(self.alice, self.room, "m.room.topic", {"topic": "Same"})
        self.assertEqual(first.body["event_id"], second.body["event_id"])
        self.assertEqual(Event.objects.filter(type="m.room.topic").count(), 1)

    def test_canonical_alias_must_point_to_the_room(self) -> None:
        response = self.set_state(
            self.alice, self.room, "m.room.canonical_alias", {"alias": "#nowhere:test.local"}
        )
        self.assert_matrix_error(response, 400, "M_BAD_ALIAS")

    def test_canonical_alias_that_is_no_alias_is_invalid_param(self) -> None:
        for content in ({"alias": "%nowhere:test.local"}, {"alt_aliases": ["#:test.local"]}):
            with self.subTest(content=content):
                response = self.set_state(self.alice, self.room, "m.room.canonical_alias", content)
                self.assert_matrix_error(response, 400, "M_INVALID_PARAM")

    def test_non_member_cannot_read_state(self) -> None:
        private = self.create_room(self.alice)
        response = self.api(self.mallory).get(f"{V3}/rooms/{q(private)}/state")
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        response = self.api(self.mallory).get(f"{V3}/rooms/{q('!unknown:test.local')}/state")
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")  # no hint whether it exists

    def test_left_user_sees_state_as_it_was(self) -> None:
        self.leave(self.bob, self.room)
        self.set_state(self.alice, self.room, "m.room.name", {"name": "After"})
        self.assertEqual(self.api(self.bob).get(self.url("m.room.name")).body, {"name": "Start"})

    def test_non_member_cannot_put_state_and_an_unknown_room_is_404(self) -> None:
        # Mallory has every power but is not in the room: the membership is what refuses.
        levels = {"users": {self.mallory.user_id: 100}}
        room = self.create_room(self.alice, power_level_content_override=levels)
        response = self.set_state(self.mallory, room, "m.room.topic", {"topic": "Mine"})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        response = self.set_state(self.alice, "!nope:test.local", "m.room.topic", {"topic": "x"})
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")
        self.assertFalse(Event.objects.filter(type="m.room.topic").exists())
