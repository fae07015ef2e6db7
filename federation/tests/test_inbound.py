"""Inbound PDUs: dropped when malformed or badly signed, redacted on a bad hash, gaps filled
through get_missing_events or the state at the gap, auth chains fetched as outliers."""

from __future__ import annotations

from typing import Any

from federation.actions.inbound import receive_pdus
from matrixhs.protocol.events import EventTypes
from matrixhs.protocol.room_versions import RoomVersion
from matrixhs.protocol.signing import (
    InvalidSignature,
    required_signature_servers,
    verify_event_signature,
    verify_key_of,
)
from rooms.events import persist_federated_event
from rooms.models import Event, Room
from rooms.tests.base import V3, RoomTestCase, q
from rooms.tests.remote import RemoteServer


class FakeRemote:
    """The origin server's side: the events it has, and what it answers."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.state_at: dict[str, tuple[list[str], list[str]]] = {}
        self.calls: list[str] = []

    def add(self, event_id: str, pdu: dict[str, Any]) -> None:
        self.events[event_id] = pdu

    def get_missing_events(
        self,
        destination: str,
        room_id: str,
        earliest: list[str],
        latest: list[str],
        limit: int,
        min_depth: int,
    ) -> list[dict[str, Any]]:
        self.calls.append("get_missing_events")
        found, seen, frontier = [], set(earliest), list(latest)
        while frontier and len(found) < limit:
            current = self.events.get(frontier.pop(0))
            if current is None:
                continue
            for prev in current["prev_events"]:
                if prev not in seen and prev in self.events:
                    seen.add(prev)
                    found.append(self.events[prev])
                    frontier.append(prev)
        return found[:limit]

    def state_ids(
        self, destination: str, room_id: str, event_id: str
    ) -> tuple[list[str], list[str]]:
        self.calls.append("state_ids")
        return self.state_at[event_id]

    def event(self, destination: str, event_id: str) -> dict[str, Any] | None:
        self.calls.append("event")
        return self.events.get(event_id)

    def event_auth(self, destination: str, room_id: str, event_id: str) -> list[dict[str, Any]]:
        self.calls.append("event_auth")
        return [self.events[a] for a in self.events[event_id]["auth_events"] if a in self.events]


class InboundTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.server = RemoteServer("remote.example")
        self.remote = FakeRemote()
        self.carol = self.server.user("carol")
        self.room_id = self.create_room(self.alice, preset="public_chat", room_version="12")
        self.join_id, join = self.server.event(
            self.room_id,
            EventTypes.MEMBER,
            self.carol,
            {"membership": "join"},
            state_key=self.carol,
        )
        self.assertTrue(persist_federated_event(self.room_id, self.join_id, join).accepted)
        self.remote.add(self.join_id, join)

    def verify(self, pdu: dict[str, Any], rv: RoomVersion) -> None:
        keys = {"remote.example": verify_key_of(self.server.key)}
        for server in required_signature_servers(pdu, rv):
            if server not in keys:
                raise InvalidSignature(f"no key for {server}")
            verify_event_signature(pdu, server, keys[server], rv)

    def receive(self, *pdus: dict[str, Any]) -> dict[str, Any]:
        return receive_pdus("remote.example", list(pdus), self.remote, self.verify)

    def message(self, body: str, **kw: Any) -> tuple[str, dict[str, Any]]:
        event_id, pdu = self.server.event(
            self.room_id, "m.room.message", self.carol, {"msgtype": "m.text", "body": body}, **kw
        )
        self.remote.add(event_id, pdu)
        return event_id, pdu

    def bodies(self) -> list[str | None]:
        chunk = self.api(self.alice).get(f"{V3}/rooms/{q(self.room_id)}/messages?dir=f&limit=50")
        return [
            e["content"].get("body") for e in chunk.body["chunk"] if e["type"] == "m.room.message"
        ]

    def test_a_signed_message_is_accepted(self) -> None:
        event_id, pdu = self.message("hello")
        self.assertEqual(self.receive(pdu), {event_id: {}})
        self.assertEqual(self.bodies(), ["hello"])

    def test_a_forged_signature_is_dropped(self) -> None:
        event_id, pdu = self.message("forged")
        pdu["signatures"]["remote.example"]["ed25519:a_test"] = "A" * 86
        result = self.receive(pdu)
        self.assertIn("signature", result[event_id]["error"])
        self.assertFalse(Event.objects.filter(event_id=event_id).exists())

    def test_an_event_signed_by_someone_else_is_dropped(self) -> None:
        other = RemoteServer("remote.example")  # same name, another key
        event_id, pdu = other.event(
            self.room_id, "m.room.message", self.carol, {"body": "impostor"}
        )
        self.assertIn("error", self.receive(pdu)[event_id])
        self.assertFalse(Event.objects.filter(event_id=event_id).exists())

    def test_a_bad_content_hash_stores_the_redacted_event(self) -> None:
        event_id, pdu = self.message("original")
        pdu["content"]["body"] = "tampered"
        self.assertEqual(self.receive(pdu), {event_id: {}})
        self.assertEqual(self.bodies(), [None])

    def test_malformed_and_foreign_events_are_dropped(self) -> None:
        event_id, pdu = self.message("x")
        pdu["depth"] = "deep"
        self.assertNotIn(event_id, Event.objects.values_list("event_id", flat=True))
        self.receive(pdu, {"room_id": self.room_id, "type": 5}, "junk")
        self.assertEqual(self.bodies(), [])

    def test_unknown_room_is_ignored(self) -> None:
        _, pdu = self.message("x")
        pdu = {**pdu, "room_id": "!elsewhere:remote.example"}
        self.assertEqual(self.receive(pdu), {})

    def test_missing_prev_events_are_fetched(self) -> None:
        first_id, _ = self.message("one", prev_events=[self.join_id])
        second_id, _ = self.message("two", prev_events=[first_id], state=self.state())
        third_id, third = self.message("three", prev_events=[second_id], state=self.state())
        self.assertEqual(self.receive(third), {third_id: {}})
        self.assertEqual(self.remote.calls, ["get_missing_events"])
        self.assertEqual(self.bodies(), ["one", "two", "three"])

    def state(self) -> dict[tuple[str, str], str]:
        return self.server.state_after(Room.objects.get(room_id=self.room_id), [self.join_id])

    def test_a_gap_too_long_is_bridged_with_the_state_at_it(self) -> None:
        prev = self.join_id
        for i in range(15):
            prev, _ = self.message(str(i), prev_events=[prev], state=self.state())
        state_ids = list(self.state().values())
        self.remote.state_at[prev] = (state_ids, state_ids)
        last_id, last = self.message("last", prev_events=[prev], state=self.state())
        self.assertEqual(self.receive(last), {last_id: {}})
        self.assertIn("state_ids", self.remote.calls)
        bodies = self.bodies()
        self.assertEqual(bodies[-1], "last")
        self.assertNotIn("0", bodies)  # the far side of the gap stays out of the timeline

    def test_sync_shows_a_gap_as_a_limited_timeline_starting_after_it(self) -> None:
        api = self.api(self.alice)
        since = self.sync(self.alice)["next_batch"]
        self.send_ok(self.alice, self.room_id, "before the gap")
        prev = self.join_id
        for i in range(15):
            prev, _ = self.message(str(i), prev_events=[prev], state=self.state())
        state_ids = list(self.state().values())
        self.remote.state_at[prev] = (state_ids, state_ids)
        last_id, last = self.message("last", prev_events=[prev], state=self.state())
        self.assertEqual(self.receive(last), {last_id: {}})

        incremental = self.sync(self.alice, since)
        timeline = incremental["rooms"]["join"][self.room_id]["timeline"]
        bodies = [e["content"].get("body") for e in timeline["events"]]
        self.assertTrue(timeline["limited"])
        self.assertEqual(bodies[-1], "last")
        self.assertNotIn("before the gap", bodies)
        # What it left out is still there to paginate back to.
        older = api.get(
            f"{V3}/rooms/{q(self.room_id)}/messages?dir=b&from={timeline['prev_batch']}"
        ).body["chunk"]
        self.assertIn("before the gap", [e["content"].get("body") for e in older])

        # Without a gap since the token, a timeline is not limited.
        since = incremental["next_batch"]
        self.send_ok(self.alice, self.room_id, "after")
        later = self.sync(self.alice, since)
        self.assertFalse(later["rooms"]["join"][self.room_id]["timeline"]["limited"])

    def test_missing_auth_events_are_fetched_as_outliers(self) -> None:
        dave = self.server.user("dave")
        state = self.state()
        dave_join_id, dave_join = self.server.event(
            self.room_id,
            EventTypes.MEMBER,
            dave,
            {"membership": "join"},
            state_key=dave,
            prev_events=[self.join_id],
            state=state,
        )
        self.remote.add(dave_join_id, dave_join)
        state[(EventTypes.MEMBER, dave)] = dave_join_id
        msg_id, msg = self.server.event(
            self.room_id,
            "m.room.message",
            dave,
            {"body": "hi"},
            prev_events=[dave_join_id],
            state=state,
        )
        self.remote.add(msg_id, msg)
        self.remote.state_at[dave_join_id] = (list(self.state().values()), [])
        # The gap filling is switched off by the origin answering nothing.
        self.remote.get_missing_events = lambda *a, **k: []  # type: ignore[method-assign]
        self.assertEqual(self.receive(msg), {msg_id: {}})
        self.assertEqual(self.remote.calls[0], "event_auth")
        self.assertTrue(Event.objects.get(event_id=dave_join_id).outlier)
        # dave's join reached us only as an auth event: in our current state he is not in
        # the room, so his message is soft-failed (stored, accepted, never served).
        self.assertTrue(Event.objects.get(event_id=msg_id).soft_failed)
        self.assertEqual(self.bodies(), [])

    def test_resent_events_are_not_stored_twice(self) -> None:
        event_id, pdu = self.message("again")
        self.receive(pdu)
        self.assertEqual(self.receive(pdu), {event_id: {}})
        self.assertEqual(Event.objects.filter(event_id=event_id).count(), 1)
