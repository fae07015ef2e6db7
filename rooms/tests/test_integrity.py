"""Self-check: every event the room API wrote re-verifies against the protocol."""

from __future__ import annotations

import json
from io import StringIO

from django.core.management import CommandError, call_command

from rooms.models import Event
from rooms.queries.integrity import verify_events
from rooms.tests.base import V3, RoomTestCase, q


class IntegrityTests(RoomTestCase):
    def build_busy_rooms(self) -> None:
        for version in ("10", "11", "12"):
            room = self.create_room(
                self.alice,
                room_version=version,
                preset="public_chat",
                name="n",
                topic="t",
                room_alias_name=f"r{version}",
                invite=["@mallory:test.local"],
            )
            self.join(self.bob, room)
            target = self.send_ok(self.bob, room, "hello")
            self.send_ok(
                self.alice,
                room,
                event_type="m.reaction",
                content={
                    "m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": "x"}
                },
            )
            self.api(self.alice).put(f"{V3}/rooms/{q(room)}/redact/{q(target)}/r1", {})
            self.api(self.alice).post(f"{V3}/rooms/{q(room)}/ban", {"user_id": "@bob:test.local"})
            self.set_state(self.alice, room, "m.room.power_levels", {"users": {}, "ban": 60})

    def test_every_stored_event_verifies(self) -> None:
        self.build_busy_rooms()
        self.assertGreater(Event.objects.count(), 30)
        self.assertEqual(list(verify_events()), [])
        out = StringIO()
        call_command("verify_events", stdout=out)
        self.assertIn("All events verify", out.getvalue())

    def test_a_tampered_event_is_caught(self) -> None:
        room = self.create_room(self.alice)
        event = Event.objects.filter(room__room_id=room, type="m.room.power_levels").get()
        pdu = json.loads(event.json)
        pdu["content"]["users_default"] = 100
        Event.objects.filter(pk=event.pk).update(json=json.dumps(pdu))
        problems = list(verify_events())
        self.assertEqual(
            [(p.event_id, p.reason) for p in problems], [(event.event_id, "content hash mismatch")]
        )
        with self.assertRaises(CommandError):
            call_command("verify_events", stdout=StringIO())
