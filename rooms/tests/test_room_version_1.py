"""Room version 1: created and used locally end to end (event IDs of the form
``$opaque:server`` carried inside the event), and forks resolved by state resolution v1."""

from __future__ import annotations

import json

from matrixhs.protocol.events import EventTypes
from rooms.events import persist_federated_event
from rooms.models import Event, ForwardExtremity, Room
from rooms.tests.base import V3, RoomTestCase, q
from rooms.tests.remote import RemoteServer


class RoomVersion1Tests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(
            self.alice, room_version="1", preset="public_chat", name="Old times"
        )

    def test_create_send_state_and_redact(self) -> None:
        self.assertEqual(Room.objects.get(room_id=self.room).room_version, "1")
        self.join(self.bob, self.room)
        message = self.send_ok(self.bob, self.room, "hello from v1")
        self.assertTrue(message.startswith("$") and message.endswith(":test.local"))
        pdu = json.loads(Event.objects.get(event_id=message).json)
        self.assertEqual(pdu["event_id"], message)
        self.assertTrue(all(isinstance(p, list) and len(p) == 2 for p in pdu["prev_events"]))
        topic = self.set_state(self.alice, self.room, "m.room.topic", {"topic": "v1 topic"})
        self.assertEqual(topic.status_code, 200, topic.body)
        got = self.api(self.bob).get(f"{V3}/rooms/{q(self.room)}/state/m.room.topic/")
        self.assertEqual(got.body, {"topic": "v1 topic"})
        redact = self.api(self.bob).put(f"{V3}/rooms/{q(self.room)}/redact/{q(message)}/r1", {})
        self.assertEqual(redact.status_code, 200, redact.body)
        self.assertEqual(self.timeline_bodies(self.alice, self.room), [None])
        wide = json.dumps({"room": {"timeline": {"limit": 50}}})
        timeline = self.sync(self.bob, filter=wide)["rooms"]["join"][self.room]["timeline"][
            "events"
        ]
        create = next(e for e in timeline if e["type"] == EventTypes.CREATE)
        self.assertEqual(create["content"]["creator"], self.alice.user_id)  # v1 names it
        self.assertIn(topic.body["event_id"], [e["event_id"] for e in timeline])

    def test_a_fork_is_resolved_with_state_resolution_v1(self) -> None:
        remote = RemoteServer()
        carol = remote.user("carol")
        join_id, join = remote.event(
            self.room, EventTypes.MEMBER, carol, {"membership": "join"}, state_key=carol
        )
        self.assertTrue(persist_federated_event(self.room, join_id, join).accepted)
        levels = self.api(self.alice).get(f"{V3}/rooms/{q(self.room)}/state/m.room.power_levels/")
        content = {**levels.body, "users": {**levels.body["users"], carol: 50}}
        power = self.set_state(self.alice, self.room, "m.room.power_levels", content)
        self.assertEqual(power.status_code, 200, power.body)
        self.set_state(self.alice, self.room, "m.room.topic", {"topic": "ours"})
        # Carol's server set a topic at the same time (its prev event: the power levels), at
        # a greater depth. v1 takes the deepest allowed topic; v2 would take ours (later).
        power_id = power.body["event_id"]
        theirs_id, theirs = remote.event(
            self.room,
            "m.room.topic",
            carol,
            {"topic": "theirs"},
            state_key="",
            prev_events=[power_id],
            depth=json.loads(Event.objects.get(event_id=power_id).json)["depth"] + 10,
        )
        self.assertTrue(persist_federated_event(self.room, theirs_id, theirs).accepted)
        self.assertEqual(ForwardExtremity.objects.filter(room__room_id=self.room).count(), 2)
        topic = self.api(self.bob).get(f"{V3}/rooms/{q(self.room)}/state/m.room.topic/")
        self.assert_matrix_error(topic, 403, "M_FORBIDDEN")  # bob is not in the room
        topic = self.api(self.alice).get(f"{V3}/rooms/{q(self.room)}/state/m.room.topic/")
        self.assertEqual(topic.body, {"topic": "theirs"})
        # A local event on top of both keeps the resolved state.
        self.send_ok(self.alice, self.room, "merge")
        topic = self.api(self.alice).get(f"{V3}/rooms/{q(self.room)}/state/m.room.topic/")
        self.assertEqual(topic.body, {"topic": "theirs"})
