from __future__ import annotations

from rooms.models import ClientTransaction, Event
from rooms.tests.base import V3, RoomTestCase, q


class SendTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(self.alice, preset="public_chat")

    def test_send_returns_event_id_and_appears_in_history(self) -> None:
        event_id = self.send_ok(self.alice, self.room, "hi")
        chunk = self.messages(self.alice, self.room).body["chunk"]
        self.assertEqual(chunk[0]["event_id"], event_id)
        self.assertEqual(chunk[0]["content"]["body"], "hi")

    def test_same_txn_id_gives_same_event(self) -> None:
        url = f"{V3}/rooms/{q(self.room)}/send/m.room.message/same"
        first = self.api(self.alice).put(url, {"msgtype": "m.text", "body": "once"})
        second = self.api(self.alice).put(url, {"msgtype": "m.text", "body": "once"})
        self.assertEqual(first.body["event_id"], second.body["event_id"])
        self.assertEqual(Event.objects.filter(type="m.room.message").count(), 1)
        self.assertEqual(ClientTransaction.objects.count(), 1)

    def test_txn_ids_are_per_device(self) -> None:
        url = f"{V3}/rooms/{q(self.room)}/send/m.room.message/same"
        self.join(self.bob, self.room)
        first = self.api(self.alice).put(url, {"body": "a"})
        second = self.api(self.bob).put(url, {"body": "b"})
        self.assertNotEqual(first.body["event_id"], second.body["event_id"])

    def test_transaction_id_is_shown_to_the_sending_device(self) -> None:
        url = f"{V3}/rooms/{q(self.room)}/send/m.room.message/mytxn"
        event_id = self.api(self.alice).put(url, {"body": "x"}).body["event_id"]
        mine = self.api(self.alice).get(f"{V3}/rooms/{q(self.room)}/event/{q(event_id)}").body
        self.assertEqual(mine["unsigned"]["transaction_id"], "mytxn")
        self.join(self.bob, self.room)
        theirs = self.api(self.bob).get(f"{V3}/rooms/{q(self.room)}/event/{q(event_id)}").body
        self.assertNotIn("transaction_id", theirs["unsigned"])

    def test_non_member_cannot_send(self) -> None:
        response = self.send(self.mallory, self.room)
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertFalse(Event.objects.filter(sender="@mallory:test.local").exists())

    def test_unknown_room(self) -> None:
        self.assert_matrix_error(self.send(self.alice, "!nope:test.local"), 404, "M_NOT_FOUND")

    def test_malformed_room_id(self) -> None:
        response = self.api(self.alice).put(f"{V3}/rooms/not-a-room/send/m.room.message/1", {})
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")

    def test_event_over_64k_is_too_large(self) -> None:
        response = self.send(self.alice, self.room, "x" * 70000)
        self.assert_matrix_error(response, 413, "M_TOO_LARGE")
        self.assertFalse(Event.objects.filter(type="m.room.message").exists())

    def test_floats_are_not_canonical_json(self) -> None:
        response = self.send(self.alice, self.room, content={"body": "x", "n": 1.5})
        self.assert_matrix_error(response, 400, "M_BAD_JSON")

    def test_insufficient_power_level(self) -> None:
        self.join(self.bob, self.room)
        self.set_state(
            self.alice,
            self.room,
            "m.room.power_levels",
            {"users": {}, "events_default": 50, "state_default": 50, "events": {}},
        )
        response = self.send(self.bob, self.room)
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")

    def test_duplicate_reaction_is_refused(self) -> None:
        target = self.send_ok(self.alice, self.room)
        reaction = {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": "👍"}}
        self.assertEqual(
            self.send(self.alice, self.room, event_type="m.reaction", content=reaction).status_code,
            200,
        )
        again = self.send(self.alice, self.room, event_type="m.reaction", content=reaction)
        self.assert_matrix_error(again, 400, "M_DUPLICATE_ANNOTATION")

    def test_redaction_through_send_in_v10(self) -> None:
        room = self.create_room(self.alice, room_version="10")
        target = self.send_ok(self.alice, room)
        response = self.send(
            self.alice, room, event_type="m.room.redaction", content={"redacts": target}
        )
        self.assertEqual(response.status_code, 200, response.body)
        redacted = self.api(self.alice).get(f"{V3}/rooms/{q(room)}/event/{q(target)}").body
        self.assertEqual(redacted["content"], {})
        event = (
            self.api(self.alice)
            .get(f"{V3}/rooms/{q(room)}/event/{q(response.body['event_id'])}")
            .body
        )
        self.assertEqual(event["redacts"], target)  # top level before v11
