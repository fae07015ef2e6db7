"""EDUs both ways: typing, read receipts and to-device messages of our users queued for
the room's other servers (and sent in their transactions), and theirs applied here."""

from __future__ import annotations

from typing import Any
from unittest import mock

from django.test import override_settings

from federation.actions.sending import drain
from federation.models import OutboundEdu
from federation.tests.signed import federation_request, known_servers
from federation.tests.test_inbound import FakeRemote
from matrixhs.protocol.events import EventTypes
from matrixhs.time import now_ms
from rooms.events import persist_federated_event
from rooms.tests.base import V3, RoomTestCase, q
from rooms.tests.remote import RemoteServer


@override_settings(MATRIXHS_FEDERATION_ENABLED=True)
class EduTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.server = RemoteServer("remote.example")
        self.carol = self.server.user("carol")
        self.room_id = self.create_room(self.alice, preset="public_chat", room_version="11")
        join_id, join = self.server.event(
            self.room_id,
            EventTypes.MEMBER,
            self.carol,
            {"membership": "join"},
            state_key=self.carol,
        )
        self.assertTrue(persist_federated_event(self.room_id, join_id, join).accepted)
        self.enterContext(known_servers(self.server))
        self.enterContext(mock.patch("federation.peers.remote", return_value=FakeRemote()))
        self.txn = 0

    def send_edus(self, *edus: dict[str, Any], server: RemoteServer | None = None) -> None:
        server = server or self.server
        self.txn += 1
        body = {"origin": server.name, "origin_server_ts": 1, "pdus": [], "edus": list(edus)}
        got = federation_request(
            self.client, server, "PUT", f"/_matrix/federation/v1/send/t{self.txn}", body
        )
        self.assertEqual((got.status_code, got.body), (200, {"pdus": {}}))

    def queued(self, edu_type: str) -> list[dict[str, Any]]:
        rows = OutboundEdu.objects.filter(destination="remote.example", edu_type=edu_type)
        return [row.content for row in rows.order_by("id")]

    # --- ours, to them -------------------------------------------------------------------

    def test_typing_and_receipts_are_sent_in_transactions(self) -> None:
        api = self.api(self.alice)
        typing = api.put(
            f"{V3}/rooms/{q(self.room_id)}/typing/{q(self.alice.user_id)}",
            {"typing": True, "timeout": 10000},
        )
        self.assertEqual(typing.status_code, 200, typing.body)
        event_id = self.send_ok(self.alice, self.room_id, "hello")
        read = api.post(f"{V3}/rooms/{q(self.room_id)}/receipt/m.read/{q(event_id)}", {})
        self.assertEqual(read.status_code, 200, read.body)
        private = api.post(f"{V3}/rooms/{q(self.room_id)}/receipt/m.read.private/{q(event_id)}", {})
        self.assertEqual(private.status_code, 200, private.body)

        sent: list[dict[str, Any]] = []
        self.assertEqual(drain("remote.example", lambda d, t, body: sent.append(body)), 1)
        self.assertEqual(len(sent), 1)
        edus = sent[0]["edus"]
        self.assertEqual([e["edu_type"] for e in edus], ["m.typing", "m.receipt"])
        self.assertEqual(
            edus[0]["content"],
            {"room_id": self.room_id, "user_id": self.alice.user_id, "typing": True},
        )
        receipt = edus[1]["content"][self.room_id]["m.read"][self.alice.user_id]
        self.assertEqual(receipt["event_ids"], [event_id])
        self.assertIsInstance(receipt["data"]["ts"], int)
        self.assertFalse(OutboundEdu.objects.exists())

    def test_a_failed_transaction_keeps_its_edus_and_stale_typing_is_dropped(self) -> None:
        self.api(self.alice).put(
            f"{V3}/rooms/{q(self.room_id)}/typing/{q(self.alice.user_id)}", {"typing": True}
        )

        def fail(*args: Any) -> None:
            raise ConnectionError("down")

        drain("remote.example", fail)
        self.assertEqual(len(self.queued("m.typing")), 1)
        # Later, after the backoff: the typing notification is stale by then.
        OutboundEdu.objects.update(txn_id=None, expires_ms=now_ms() - 1)
        self.assertEqual(self.queued("m.typing"), [self.queued("m.typing")[0]])
        sent: list[dict[str, Any]] = []
        with mock.patch("federation.actions.sending._claim", return_value=True):
            drain("remote.example", lambda d, t, body: sent.append(body))
        self.assertEqual(sent, [])
        self.assertFalse(OutboundEdu.objects.exists())

    def test_to_device_messages_for_their_users(self) -> None:
        got = self.api(self.alice).put(
            f"{V3}/sendToDevice/m.test/txn1",
            {"messages": {self.carol: {"PHONE": {"hi": 1}}}},
        )
        self.assertEqual(got.status_code, 200, got.body)
        [edu] = self.queued("m.direct_to_device")
        self.assertEqual(edu["sender"], self.alice.user_id)
        self.assertEqual(edu["messages"], {self.carol: {"PHONE": {"hi": 1}}})

    # --- theirs, to us -------------------------------------------------------------------

    def test_their_typing_reaches_our_users(self) -> None:
        edu = {"room_id": self.room_id, "user_id": self.carol, "typing": True}
        self.send_edus({"edu_type": "m.typing", "content": edu})
        first = self.sync(self.alice)
        ephemeral = first["rooms"]["join"][self.room_id]["ephemeral"]["events"]
        typing = [e for e in ephemeral if e["type"] == "m.typing"]
        self.assertEqual(typing[0]["content"]["user_ids"], [self.carol])
        self.send_edus({"edu_type": "m.typing", "content": {**edu, "typing": False}})
        later = self.sync(self.alice, since=first["next_batch"])
        ephemeral = later["rooms"]["join"][self.room_id]["ephemeral"]["events"]
        self.assertEqual(
            [e["content"]["user_ids"] for e in ephemeral if e["type"] == "m.typing"], [[]]
        )

    def test_edus_about_others_are_ignored(self) -> None:
        stranger = RemoteServer("stranger.example")
        with known_servers(self.server, stranger):
            # A user of another server than the sender's; a user not in the room.
            self.send_edus(
                {
                    "edu_type": "m.typing",
                    "content": {"room_id": self.room_id, "user_id": self.carol, "typing": True},
                },
                server=stranger,
            )
            self.send_edus(
                {
                    "edu_type": "m.typing",
                    "content": {
                        "room_id": self.room_id,
                        "user_id": "@dave:remote.example",
                        "typing": True,
                    },
                },
                {"edu_type": "m.typing", "content": "nonsense"},
                {"edu_type": "m.receipt", "content": {self.room_id: {"m.read": "x"}}},
                {"edu_type": "m.unknown", "content": {}},
            )
        room = self.sync(self.alice)["rooms"]["join"][self.room_id]
        typing = [e for e in room["ephemeral"]["events"] if e["type"] == "m.typing"]
        self.assertEqual([e["content"]["user_ids"] for e in typing], [[]] if typing else [])

    def test_their_read_receipts_reach_our_users(self) -> None:
        event_id = self.send_ok(self.alice, self.room_id, "read me")
        receipt = {"event_ids": [event_id], "data": {"ts": 1234}}
        self.send_edus(
            {
                "edu_type": "m.receipt",
                "content": {self.room_id: {"m.read": {self.carol: receipt}}},
            }
        )
        ephemeral = self.sync(self.alice)["rooms"]["join"][self.room_id]["ephemeral"]["events"]
        receipts = [e["content"] for e in ephemeral if e["type"] == "m.receipt"]
        self.assertEqual(receipts[0][event_id]["m.read"][self.carol], {"ts": 1234})

    def test_their_to_device_messages_are_delivered_once(self) -> None:
        edu = {
            "edu_type": "m.direct_to_device",
            "content": {
                "sender": self.carol,
                "type": "m.room_key_request",
                "message_id": "m1",
                "messages": {self.alice.user_id: {"*": {"body": 1}}},
            },
        }
        self.send_edus(edu)
        self.send_edus(edu)  # the same message again, in another transaction
        to_device = self.sync(self.alice)["to_device"]["events"]
        self.assertEqual(
            to_device,
            [{"sender": self.carol, "type": "m.room_key_request", "content": {"body": 1}}],
        )

    @override_settings(MATRIXHS_PRESENCE_ENABLED=True)
    def test_presence_both_ways(self) -> None:
        got = self.api(self.alice).put(
            f"{V3}/presence/{q(self.alice.user_id)}/status",
            {"presence": "online", "status_msg": "here"},
        )
        self.assertEqual(got.status_code, 200, got.body)
        [edu] = self.queued("m.presence")
        self.assertEqual(
            [(p["user_id"], p["presence"], p["status_msg"]) for p in edu["push"]],
            [(self.alice.user_id, "online", "here")],
        )
        stranger = RemoteServer("stranger.example")
        push = {
            "user_id": self.carol,
            "presence": "unavailable",
            "last_active_ago": 5000,
            "status_msg": "away",
        }
        with known_servers(self.server, stranger):
            self.send_edus({"edu_type": "m.presence", "content": {"push": [push]}}, server=stranger)
            stranger_said = self.sync(self.alice)["presence"]["events"]
            self.assertNotIn(self.carol, [e["sender"] for e in stranger_said])
            self.send_edus({"edu_type": "m.presence", "content": {"push": [push]}})
        events = {e["sender"]: e["content"] for e in self.sync(self.alice)["presence"]["events"]}
        self.assertEqual(events[self.carol]["presence"], "unavailable")
        self.assertEqual(events[self.carol]["status_msg"], "away")
        self.assertGreaterEqual(events[self.carol]["last_active_ago"], 5000)
