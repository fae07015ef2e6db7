"""Events from other servers: auth with their auth events, the state before them and the
current state (reject / soft-fail), forks resolved, outliers, waiting redactions, backfill."""

from __future__ import annotations

import json

from matrixhs.protocol.events import EventTypes
from rooms.events import StateUnknown, persist_federated_event, persist_outliers
from rooms.models import CurrentStateEvent, Event, ForwardExtremity, Room, RoomMembership
from rooms.tests.base import V3, RoomTestCase, q
from rooms.tests.remote import RemoteServer


class FederatedEventTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.remote = RemoteServer()
        self.carol = self.remote.user("carol")
        self.room_id = self.create_room(self.alice, preset="public_chat")

    def remote_join(self, user_id: str | None = None) -> str:
        user_id = user_id or self.carol
        event_id, pdu = self.remote.event(
            self.room_id, EventTypes.MEMBER, user_id, {"membership": "join"}, state_key=user_id
        )
        outcome = persist_federated_event(self.room_id, event_id, pdu)
        self.assertIsNone(outcome.rejected_reason)
        return event_id

    def remote_message(self, body: str, **kw: object) -> tuple[str, dict[str, object]]:
        return self.remote.event(
            self.room_id, "m.room.message", self.carol, {"msgtype": "m.text", "body": body}, **kw
        )

    def bodies(self, user: object) -> list[str]:
        chunk = self.api(user).get(f"{V3}/rooms/{q(self.room_id)}/messages?dir=b&limit=50")
        return [
            e["content"].get("body") for e in chunk.body["chunk"] if e["type"] == "m.room.message"
        ]

    def test_remote_join_updates_state_and_members(self) -> None:
        join_id = self.remote_join()
        membership = RoomMembership.objects.get(room__room_id=self.room_id, user_id=self.carol)
        self.assertEqual((membership.membership, membership.event_id), ("join", join_id))
        current = CurrentStateEvent.objects.get(
            room__room_id=self.room_id, type=EventTypes.MEMBER, state_key=self.carol
        )
        self.assertEqual(current.event_id, join_id)
        members = self.api(self.alice).get(f"{V3}/rooms/{q(self.room_id)}/joined_members")
        self.assertIn(self.carol, members.body["joined"])

    def test_remote_message_reaches_local_clients(self) -> None:
        self.remote_join()
        since = self.sync(self.alice)["next_batch"]
        event_id, pdu = self.remote_message("hi from afar")
        self.assertTrue(persist_federated_event(self.room_id, event_id, pdu).accepted)
        timeline = self.sync(self.alice, since=since)["rooms"]["join"][self.room_id]["timeline"]
        self.assertEqual([e["event_id"] for e in timeline["events"]], [event_id])
        self.assertEqual(self.bodies(self.alice), ["hi from afar"])
        # Our next event follows it.
        mine = self.send_ok(self.alice, self.room_id, "reply")
        pdu_mine = json.loads(Event.objects.get(event_id=mine).json)
        self.assertEqual(pdu_mine["prev_events"], [event_id])

    def test_event_from_a_non_member_is_rejected_and_never_served(self) -> None:
        event_id, pdu = self.remote_message("let me in")
        outcome = persist_federated_event(self.room_id, event_id, pdu)
        self.assertIsNotNone(outcome.rejected_reason)
        row = Event.objects.get(event_id=event_id)
        self.assertIsNone(row.stream_ordering)
        self.assertEqual(self.bodies(self.alice), [])
        self.assertFalse(ForwardExtremity.objects.filter(event_id=event_id).exists())
        response = self.api(self.alice).get(f"{V3}/rooms/{q(self.room_id)}/event/{q(event_id)}")
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")

    def test_event_before_a_ban_is_soft_failed(self) -> None:
        join_id = self.remote_join()
        ban = self.api(self.alice).post(
            f"{V3}/rooms/{q(self.room_id)}/ban", {"user_id": self.carol}
        )
        self.assertEqual(ban.status_code, 200, ban.body)
        # carol's server has not seen the ban: it sends on top of her join.
        event_id, pdu = self.remote_message("sneaky", prev_events=[join_id])
        outcome = persist_federated_event(self.room_id, event_id, pdu)
        self.assertTrue(outcome.accepted)
        self.assertTrue(outcome.soft_failed)
        self.assertEqual(self.bodies(self.alice), [])
        membership = RoomMembership.objects.get(room__room_id=self.room_id, user_id=self.carol)
        self.assertEqual(membership.membership, "ban")

    def test_concurrent_state_is_resolved_over_the_extremities(self) -> None:
        join_id = self.remote_join()
        self.set_state(self.alice, self.room_id, "m.room.topic", {"topic": "ours"})
        # carol's server sends a message on top of her join only: a fork.
        event_id, pdu = self.remote_message("fork", prev_events=[join_id])
        self.assertTrue(persist_federated_event(self.room_id, event_id, pdu).accepted)
        tips = set(
            ForwardExtremity.objects.filter(room__room_id=self.room_id).values_list(
                "event_id", flat=True
            )
        )
        self.assertEqual(len(tips), 2)
        topic = self.api(self.alice).get(f"{V3}/rooms/{q(self.room_id)}/state/m.room.topic/")
        self.assertEqual(topic.body, {"topic": "ours"})
        # A new local event joins the fork up again.
        mine = self.send_ok(self.alice, self.room_id, "merge")
        pdu_mine = json.loads(Event.objects.get(event_id=mine).json)
        self.assertEqual(set(pdu_mine["prev_events"]), tips)
        self.assertEqual(
            list(
                ForwardExtremity.objects.filter(room__room_id=self.room_id).values_list(
                    "event_id", flat=True
                )
            ),
            [mine],
        )

    def test_remote_state_change_on_a_fork_goes_through_state_resolution(self) -> None:
        join_id = self.remote_join()
        self.send_ok(self.alice, self.room_id, "ours")
        event_id, pdu = self.remote.event(
            self.room_id,
            "m.room.topic",
            self.carol,
            {"topic": "theirs"},
            state_key="",
            prev_events=[join_id],
        )
        # carol is at power 0 and the topic needs 50: rejected against the state before.
        outcome = persist_federated_event(self.room_id, event_id, pdu)
        self.assertIsNotNone(outcome.rejected_reason)
        self.assertFalse(
            CurrentStateEvent.objects.filter(
                room__room_id=self.room_id, type="m.room.topic"
            ).exists()
        )

    def test_unknown_prev_events_need_the_state(self) -> None:
        self.remote_join()
        event_id, pdu = self.remote_message("gap", prev_events=["$unknown"])
        with self.assertRaises(StateUnknown):
            persist_federated_event(self.room_id, event_id, pdu)
        self.assertFalse(Event.objects.filter(event_id=event_id).exists())
        room = Room.objects.get(room_id=self.room_id)
        state = self.remote.state_after(room, [self.latest()])
        outcome = persist_federated_event(self.room_id, event_id, pdu, state=state)
        self.assertTrue(outcome.accepted)
        self.assertEqual(self.bodies(self.alice), ["gap"])

    def latest(self) -> str:
        return str(
            ForwardExtremity.objects.filter(room__room_id=self.room_id)
            .values_list("event_id", flat=True)
            .first()
        )

    def test_redaction_waits_for_its_target(self) -> None:
        self.remote_join()
        target_id, target = self.remote_message("oops")
        redaction_id, redaction = self.remote.event(
            self.room_id,
            EventTypes.REDACTION,
            self.carol,
            {"redacts": target_id},
            prev_events=[target_id],
            redacts=target_id,
        )
        room = Room.objects.get(room_id=self.room_id)
        state = self.remote.state_after(room, [self.latest()])
        self.assertTrue(
            persist_federated_event(self.room_id, redaction_id, redaction, state=state).accepted
        )
        self.assertTrue(persist_federated_event(self.room_id, target_id, target).accepted)
        self.assertEqual(Event.objects.get(event_id=target_id).redacted_by, redaction_id)
        self.assertEqual(self.bodies(self.alice), [None])

    def test_outliers_are_checked_and_never_served(self) -> None:
        self.remote_join()
        good_id, good = self.remote_message("outlier")
        bad_id, bad = self.remote.event(
            self.room_id,
            "m.room.message",
            self.remote.user("stranger"),
            {"body": "x"},
        )
        outcomes = persist_outliers(self.room_id, [(good_id, good), (bad_id, bad)])
        self.assertIsNone(outcomes[good_id].rejected_reason)
        self.assertIsNotNone(outcomes[bad_id].rejected_reason)
        self.assertTrue(Event.objects.get(event_id=good_id).outlier)
        self.assertEqual(self.bodies(self.alice), [])
        # The outlier later arrives in the timeline: it becomes a live event.
        self.assertTrue(persist_federated_event(self.room_id, good_id, good).accepted)
        self.assertFalse(Event.objects.get(event_id=good_id).outlier)
        self.assertEqual(self.bodies(self.alice), ["outlier"])

    def test_depth_is_clamped(self) -> None:
        self.remote_join()
        event_id, pdu = self.remote_message("deep", depth=2**50)
        self.assertTrue(persist_federated_event(self.room_id, event_id, pdu).accepted)
        row = Event.objects.get(event_id=event_id)
        prev_depth = Event.objects.get(event_id=pdu["prev_events"][0]).depth
        self.assertEqual(row.depth, prev_depth + 1)
        mine = self.send_ok(self.alice, self.room_id, "after")
        self.assertEqual(self.bodies(self.alice)[:2], ["after", "deep"])
        self.assertLess(json.loads(Event.objects.get(event_id=mine).json)["depth"], 2**50)

    def test_backfilled_history_sorts_before_and_stays_out_of_sync(self) -> None:
        join_id = self.remote_join()
        since = self.sync(self.alice)["next_batch"]
        room = Room.objects.get(room_id=self.room_id)
        state = self.remote.state_after(room, [join_id])
        event_id, pdu = self.remote_message("old", prev_events=[join_id], depth=1)
        outcome = persist_federated_event(self.room_id, event_id, pdu, state=state, backfilled=True)
        self.assertTrue(outcome.accepted)
        self.assertLess(Event.objects.get(event_id=event_id).stream_ordering, 0)
        self.assertNotIn(
            self.room_id,
            self.sync(self.alice, since=since, timeout="0").get("rooms", {}).get("join", {}),
        )
        self.assertEqual(self.bodies(self.alice), ["old"])

    def test_the_same_event_twice_is_stored_once(self) -> None:
        self.remote_join()
        event_id, pdu = self.remote_message("once")
        persist_federated_event(self.room_id, event_id, pdu)
        self.assertTrue(persist_federated_event(self.room_id, event_id, pdu).already_known)
        self.assertEqual(Event.objects.filter(event_id=event_id).count(), 1)
