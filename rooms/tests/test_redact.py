"""Redactions: only message events of type m.room.redaction redact."""

from __future__ import annotations

import json
from typing import Any

from rooms.models import Event
from rooms.tests.base import V3, RoomTestCase, q

LEVELS = {
    "users": {"@bob:test.local": 50},
    "state_default": 50,
    "redact": 100,
    "events": {"m.room.power_levels": 100},
}


class StateRedactionTests(RoomTestCase):
    def moderated_room(self, version: str) -> str:
        """Alice's room where Bob has the state level (50) but not the redact level (100)."""
        room = self.create_room(self.alice, preset="public_chat", room_version=version)
        self.join(self.bob, room)
        levels = dict(LEVELS)
        if version in ("10", "11"):  # before v12 the creator is listed too
            levels["users"] = {**LEVELS["users"], "@alice:test.local": 100}
        response = self.set_state(self.alice, room, "m.room.power_levels", levels)
        self.assertEqual(response.status_code, 200, response.body)
        return room

    def event(self, room: str, event_id: str) -> dict[str, Any]:
        response = self.api(self.alice).get(f"{V3}/rooms/{q(room)}/event/{q(event_id)}")
        self.assertEqual(response.status_code, 200, response.body)
        body: dict[str, Any] = response.body
        return body

    def test_state_event_of_type_redaction_redacts_nothing(self) -> None:
        for version in ("10", "11", "12"):
            with self.subTest(version=version):
                room = self.moderated_room(version)
                target = self.send_ok(self.alice, room, "keep me")
                response = self.set_state(self.bob, room, "m.room.redaction", {"redacts": target})
                self.assertEqual(response.status_code, 200, response.body)
                self.assertEqual(self.event(room, target)["content"]["body"], "keep me")
                self.assertIsNone(Event.objects.get(event_id=target).redacted_by)
                state_event = self.event(room, response.body["event_id"])
                self.assertNotIn("redacts", state_event)  # clients must not see a redaction

    def test_state_redaction_is_not_shown_as_a_redaction_in_sync(self) -> None:
        room = self.moderated_room("11")
        target = self.send_ok(self.alice, room, "keep me")
        self.set_state(self.bob, room, "m.room.redaction", {"redacts": target})
        response = self.sync(self.alice, filter=json.dumps({"room": {"timeline": {"limit": 50}}}))
        timeline = response["rooms"]["join"][room]["timeline"]["events"]
        by_type = {e["type"]: e for e in timeline}
        self.assertNotIn("redacts", by_type["m.room.redaction"])
        message = next(e for e in timeline if e["event_id"] == target)
        self.assertEqual(message["content"]["body"], "keep me")

    def test_redaction_below_the_redact_level_is_refused(self) -> None:
        room = self.moderated_room("11")
        target = self.send_ok(self.alice, room, "keep me")
        response = self.api(self.bob).put(f"{V3}/rooms/{q(room)}/redact/{q(target)}/t1", {})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertEqual(self.event(room, target)["content"]["body"], "keep me")


class RedactAccessTests(RoomTestCase):
    def test_one_who_left_cannot_redact_and_an_unknown_room_is_404(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        own = self.send_ok(self.bob, room, "mine")
        self.leave(self.bob, room)
        response = self.api(self.bob).put(f"{V3}/rooms/{q(room)}/redact/{q(own)}/r1", {})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        theirs = self.send_ok(self.alice, room, "alice's")
        response = self.api(self.mallory).put(f"{V3}/rooms/{q(room)}/redact/{q(theirs)}/r2", {})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        unknown = q("!nope:test.local")
        response = self.api(self.alice).put(f"{V3}/rooms/{unknown}/redact/{q(theirs)}/r3", {})
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")
        self.assertFalse(Event.objects.filter(type="m.room.redaction").exists())
