"""The outbound queue: events owed to other servers, sent in order, once acknowledged."""

from __future__ import annotations

from typing import Any
from unittest import mock

from django.test import override_settings

from federation.actions import sending
from federation.actions.sending import drain, due_destinations, mark_reachable
from federation.models import Destination, OutboundPdu
from matrixhs.protocol.events import EventTypes
from rooms.events import persist_federated_event
from rooms.tests.base import RoomTestCase
from rooms.tests.remote import RemoteServer


class Recorder:
    def __init__(self, fail: int = 0) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.fail = fail

    def __call__(self, destination: str, txn_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("down")
        self.sent.append((destination, txn_id, body))
        return {"pdus": {}}

    def event_ids(self) -> list[str]:
        from matrixhs.protocol.hashing import compute_event_id
        from matrixhs.protocol.room_versions import get_room_version

        rv = get_room_version("12")
        return [compute_event_id(p, rv) for _, _, body in self.sent for p in body["pdus"]]


@override_settings(MATRIXHS_FEDERATION_RETRY_MIN_S=60, MATRIXHS_FEDERATION_RETRY_MAX_S=3600)
class SendingTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.remote = RemoteServer("remote.example")
        self.room_id = self.create_room(self.alice, preset="public_chat", room_version="12")
        carol = self.remote.user("carol")
        event_id, pdu = self.remote.event(
            self.room_id, EventTypes.MEMBER, carol, {"membership": "join"}, state_key=carol
        )
        self.assertTrue(persist_federated_event(self.room_id, event_id, pdu).accepted)

    def test_local_events_are_queued_for_the_servers_in_the_room(self) -> None:
        first = self.send_ok(self.alice, self.room_id, "one")
        second = self.send_ok(self.alice, self.room_id, "two")
        queued = list(OutboundPdu.objects.order_by("id").values_list("destination", "event_id"))
        self.assertEqual(queued, [("remote.example", first), ("remote.example", second)])
        recorder = Recorder()
        self.assertEqual(drain("remote.example", recorder), 2)
        self.assertEqual(recorder.event_ids(), [first, second])
        _, _, body = recorder.sent[0]
        self.assertEqual(body["origin"], "test.local")
        self.assertEqual(body["edus"], [])
        self.assertFalse(OutboundPdu.objects.exists())

    def test_rooms_without_remote_members_queue_nothing(self) -> None:
        local_room = self.create_room(self.alice)
        self.send_ok(self.alice, local_room, "private")
        self.assertFalse(OutboundPdu.objects.filter(room_id=local_room).exists())

    def test_transactions_carry_at_most_fifty_events_in_order(self) -> None:
        sent = [self.send_ok(self.alice, self.room_id, str(i)) for i in range(60)]
        recorder = Recorder()
        drain("remote.example", recorder)
        self.assertEqual([len(body["pdus"]) for _, _, body in recorder.sent], [50, 10])
        self.assertEqual(recorder.event_ids(), sent)
        self.assertEqual(len({txn for _, txn, _ in recorder.sent}), 2)

    def test_a_failure_backs_off_and_keeps_the_queue(self) -> None:
        event_id = self.send_ok(self.alice, self.room_id, "later")
        self.assertEqual(drain("remote.example", Recorder(fail=1)), 0)
        destination = Destination.objects.get(server_name="remote.example")
        self.assertGreaterEqual(destination.retry_interval_ms, 60_000)
        self.assertEqual(destination.failures, 1)
        self.assertEqual(due_destinations(), [])
        recorder = Recorder()
        self.assertEqual(drain("remote.example", recorder), 0)  # still backed off
        mark_reachable("remote.example")  # the server talked to us
        self.assertEqual(due_destinations(), ["remote.example"])
        self.assertEqual(drain("remote.example", recorder), 1)
        self.assertEqual(recorder.event_ids(), [event_id])

    def test_backoff_doubles_up_to_the_maximum(self) -> None:
        self.send_ok(self.alice, self.room_id, "x")
        intervals = []
        for _ in range(8):
            Destination.objects.filter(server_name="remote.example").update(retry_at_ms=0)
            drain("remote.example", Recorder(fail=1))
            intervals.append(
                Destination.objects.get(server_name="remote.example").retry_interval_ms // 1000
            )
        self.assertEqual(intervals, [60, 120, 240, 480, 960, 1920, 3600, 3600])

    def test_a_transaction_cut_short_is_resent_with_the_same_id(self) -> None:
        self.send_ok(self.alice, self.room_id, "x")

        def crash(destination: str, txn_id: str, body: dict[str, Any]) -> None:
            raise KeyboardInterrupt  # the process dies after sending, before the ack is kept

        with self.assertRaises(KeyboardInterrupt):
            drain("remote.example", crash)
        first_txn = OutboundPdu.objects.get().txn_id
        self.send_ok(self.alice, self.room_id, "y")
        recorder = Recorder()
        drain("remote.example", recorder)
        self.assertEqual(recorder.sent[0][1], str(first_txn))
        self.assertEqual(len(recorder.sent[0][2]["pdus"]), 1)
        self.assertEqual(len(recorder.sent), 2)

    def test_transaction_ids_are_not_reused_after_the_queue_state_is_lost(self) -> None:
        # A destination answers a known (origin, txnId) from its cache without reading it:
        # IDs must not start over when this server's database is reset.
        self.send_ok(self.alice, self.room_id, "before the reset")
        before = Recorder()
        drain("remote.example", before)
        Destination.objects.all().delete()
        self.send_ok(self.alice, self.room_id, "after the reset")
        after = Recorder()
        drain("remote.example", after)
        self.assertNotEqual(before.sent[0][1], after.sent[0][1])
        self.assertGreater(int(after.sent[0][1]), int(before.sent[0][1]))

    def test_one_sender_per_destination(self) -> None:
        self.send_ok(self.alice, self.room_id, "x")
        inner: list[int] = []

        def reentrant(destination: str, txn_id: str, body: dict[str, Any]) -> None:
            inner.append(drain(destination, Recorder()))

        drain("remote.example", reentrant)
        self.assertEqual(inner, [0])

    def test_catch_up_after_an_outage_keeps_the_newest_events(self) -> None:
        sent = [
            self.send_ok(self.alice, self.room_id, str(i))
            for i in range(sending.CATCH_UP_THRESHOLD + 5)
        ]
        Destination.objects.update_or_create(
            server_name="remote.example", defaults={"failures": 3}
        )  # it was down
        recorder = Recorder()
        drain("remote.example", recorder)
        self.assertEqual(recorder.event_ids(), sent[-sending.CATCH_UP_KEEP :])

    def test_a_burst_to_a_healthy_destination_is_sent_whole(self) -> None:
        sent = [
            self.send_ok(self.alice, self.room_id, str(i))
            for i in range(sending.CATCH_UP_THRESHOLD + 5)
        ]
        recorder = Recorder()
        with mock.patch("federation.sender.wake") as wake:
            while OutboundPdu.objects.exists():
                drain("remote.example", recorder)
        self.assertEqual(recorder.event_ids(), sent)
        # Each turn ends after a few transactions and wakes the destination again.
        turns = -(-len(sent) // (50 * sending.TRANSACTIONS_PER_TURN))
        self.assertEqual(wake.call_count, turns - 1)
        wake.assert_called_with({"remote.example"})
