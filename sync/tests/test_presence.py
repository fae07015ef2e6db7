"""sync.presence: what /sync calls (do_mark_active, presence_changes, current_presence)
and the periodic job that idles users."""

from __future__ import annotations

from unittest import mock

from django.test import override_settings

from matrixhs.background import PERIODIC_JOBS
from matrixhs.errors import InvalidParam
from matrixhs.streams import Stream, current_position
from rooms.tests.base import RoomTestCase
from sync import presence
from sync.models import Presence

MINUTE = 60_000


class PresenceTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, self.room)

    def row(self, user) -> Presence:
        return Presence.objects.get(user_id=user.user_id)

    def at(self, ms: int):
        return mock.patch("sync.presence.now_ms", return_value=ms)

    def test_sync_marks_online_then_writes_nothing_for_a_minute(self) -> None:
        with self.at(1_000_000):
            presence.do_mark_active(self.alice, "online")
        row = self.row(self.alice)
        self.assertEqual(
            (row.state, row.currently_active, row.last_active_ts), ("online", True, 1_000_000)
        )
        with self.at(1_000_000 + 30_000), self.assertNumQueries(1):
            presence.do_mark_active(self.alice, "online")
        with self.at(1_000_000 + MINUTE), self.assertNumQueries(2):
            presence.do_mark_active(self.alice, "online")  # read + UPDATE, no position
        self.assertEqual(self.row(self.alice).last_active_ts, 1_000_000 + MINUTE)
        self.assertEqual(self.row(self.alice).stream_id, row.stream_id)

    def test_set_presence_offline_changes_nothing(self) -> None:
        with self.assertNumQueries(0):
            presence.do_mark_active(self.alice, "offline")
        self.assertFalse(Presence.objects.exists())
        with self.assertRaises(InvalidParam):
            presence.do_mark_active(self.alice, "busy")

    def test_set_presence_unavailable_idles_without_activity(self) -> None:
        presence.do_mark_active(self.alice, "online")
        active = self.row(self.alice).last_active_ts
        presence.do_mark_active(self.alice, "unavailable")
        row = self.row(self.alice)
        self.assertEqual(
            (row.state, row.currently_active, row.last_active_ts), ("unavailable", False, active)
        )

    def test_job_idles_then_offlines(self) -> None:
        start = 10_000_000
        with self.at(start):
            presence.do_mark_active(self.alice, "online")
            presence.do_mark_active(self.bob, "online")
        with self.at(start + 4 * MINUTE):
            presence.do_mark_active(self.bob, "online")
        position = current_position(Stream.PRESENCE)
        self.assertEqual(presence.expire_idle_presence(start + 5 * MINUTE + 1), 1)
        self.assertEqual(self.row(self.alice).state, "unavailable")
        self.assertEqual(self.row(self.alice).stream_id, position + 1)
        self.assertEqual(self.row(self.bob).state, "online")
        self.assertEqual(presence.expire_idle_presence(start + 5 * MINUTE + 2), 0)
        self.assertEqual(presence.expire_idle_presence(start + 30 * MINUTE + 1), 2)
        self.assertEqual(
            (self.row(self.alice).state, self.row(self.bob).state), ("offline", "unavailable")
        )
        self.assertEqual(presence.expire_idle_presence(start + 34 * MINUTE + 1), 1)
        self.assertEqual(self.row(self.bob).state, "offline")

    def test_syncing_while_unavailable_keeps_you_from_going_offline(self) -> None:
        start = 10_000_000
        with self.at(start):
            presence.do_mark_active(self.alice, "unavailable")
        with self.at(start + 29 * MINUTE):
            presence.do_mark_active(self.alice, "unavailable")
        self.assertEqual(presence.expire_idle_presence(start + 31 * MINUTE), 0)
        self.assertEqual(self.row(self.alice).state, "unavailable")

    def test_job_wakes_room_mates(self) -> None:
        with self.at(0):
            presence.do_mark_active(self.alice, "online")
        with mock.patch("matrixhs.notifier.notify_users") as notify:
            with self.captureOnCommitCallbacks(execute=True):
                presence.expire_idle_presence(6 * MINUTE)
        self.assertEqual(set(notify.call_args.args[0]), {self.alice.user_id, self.bob.user_id})

    def test_job_is_registered(self) -> None:
        self.assertIn("sync.presence.expire_idle_presence", [job.path for job in PERIODIC_JOBS])

    def test_presence_changes_between_positions(self) -> None:
        start = current_position(Stream.PRESENCE)
        presence.do_set_presence(self.alice, "online", "hello")
        middle = current_position(Stream.PRESENCE)
        presence.do_set_presence(self.mallory, "online")  # shares no room with bob
        presence.do_set_presence(self.bob, "unavailable")
        end = current_position(Stream.PRESENCE)
        events = presence.presence_changes(self.bob.user_id, start, middle)
        self.assertEqual([e["sender"] for e in events], [self.alice.user_id])
        self.assertEqual(events[0]["type"], "m.presence")
        self.assertEqual(events[0]["content"]["status_msg"], "hello")
        events = presence.presence_changes(self.bob.user_id, middle, end)
        self.assertEqual([e["sender"] for e in events], [self.bob.user_id])
        self.assertEqual(
            presence.presence_changes(self.mallory.user_id, start, end)[0]["sender"],
            self.mallory.user_id,
        )

    def test_initial_sync_leaves_offline_users_out(self) -> None:
        presence.do_set_presence(self.alice, "offline")
        presence.do_set_presence(self.bob, "online")
        end = current_position(Stream.PRESENCE)
        initial = presence.presence_changes(self.bob.user_id, None, end)
        self.assertEqual([e["sender"] for e in initial], [self.bob.user_id])
        senders = [e["sender"] for e in presence.presence_changes(self.bob.user_id, 0, end)]
        self.assertEqual(senders, [self.alice.user_id, self.bob.user_id])

    def test_leaving_the_room_ends_sharing(self) -> None:
        self.leave(self.bob, self.room)
        presence.do_set_presence(self.alice, "online")
        end = current_position(Stream.PRESENCE)
        self.assertEqual(presence.presence_changes(self.bob.user_id, None, end), [])

    def test_current_presence(self) -> None:
        presence.do_set_presence(self.alice, "unavailable", "away")
        current = presence.current_presence([self.alice.user_id, self.bob.user_id])
        self.assertEqual(current[self.alice.user_id]["status_msg"], "away")
        self.assertEqual(current[self.bob.user_id], {"presence": "offline"})

    @override_settings(MATRIXHS_PRESENCE_ENABLED=False)
    def test_disabled_stores_and_sends_nothing(self) -> None:
        presence.do_mark_active(self.alice, "online")
        presence.do_set_presence(self.alice, "online")
        self.assertFalse(Presence.objects.exists())
        self.assertEqual(presence.presence_changes(self.alice.user_id, 0, 10**9), [])
        self.assertEqual(presence.expire_idle_presence(), 0)
        self.assertEqual(
            presence.current_presence([self.alice.user_id]),
            {self.alice.user_id: {"presence": "offline"}},
        )


class NewlyJoinedPresenceTests(RoomTestCase):
    """Users who come to share a room appear in the presence of the next incremental
    sync, even when their presence did not change meanwhile."""

    def senders(self, body: dict) -> set[str]:
        return {e["sender"] for e in body.get("presence", {}).get("events", [])}

    def test_member_joining_my_room(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        presence.do_set_presence(self.mallory, "online")
        token = self.sync(self.alice)["next_batch"]
        self.join(self.mallory, room)
        body = self.sync(self.alice, since=token)
        self.assertIn(self.mallory.user_id, self.senders(body))
        self.assertNotIn(
            self.mallory.user_id, self.senders(self.sync(self.alice, since=body["next_batch"]))
        )

    def test_members_of_a_room_i_join(self) -> None:
        room = self.create_room(self.mallory, preset="public_chat")
        presence.do_set_presence(self.mallory, "unavailable")
        token = self.sync(self.alice)["next_batch"]
        self.join(self.alice, room)
        self.assertIn(self.mallory.user_id, self.senders(self.sync(self.alice, since=token)))
