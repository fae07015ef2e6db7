"""Shared notifications: one row for the members a message notifies alike, read by unread
counts and GET /notifications as if each member had their own."""

from __future__ import annotations

from typing import Any
from unittest import mock

from django.db import connection
from django.test.utils import CaptureQueriesContext

from matrixhs.streams import Stream, current_position
from push.actions import notifications
from push.actions.spans import do_track_memberships
from push.models import MembershipSpan, Notification, NotificationExclusion, SharedNotification
from push.queries import unread_counts
from push.tests.test_evaluation import CLIENT, PushTestCase
from rooms.models import Room

NOTIFICATIONS = f"{CLIENT}/notifications"


class SharedTestCase(PushTestCase):
    """Alice's room with Bob and six more members; any outcome that most of them share
    is stored as a shared notification."""

    def setUp(self) -> None:
        super().setUp()
        self.enterContext(mock.patch.object(notifications, "SHARED_MIN_MEMBERS", 2))
        self.members = [self.make_user(f"member{i}") for i in range(6)]
        for user in self.members:
            self.join(user)

    def join(self, user: Any, room_id: str | None = None) -> None:
        room_id = room_id or self.room_id
        self.api(self.alice).post(f"{CLIENT}/rooms/{room_id}/invite", {"user_id": user.user_id})
        self.api(user).post(f"{CLIENT}/join/{room_id}", {})

    def send_in(self, room_id: str, user: Any, content: dict[str, Any]) -> str:
        self.txn += 1
        path = f"{CLIENT}/rooms/{room_id}/send/m.room.message/t{self.txn}"
        return str(self.api(user).put(path, content).body["event_id"])

    def message(self, user: Any, body: str = "hi") -> str:
        return self.send(user, {"msgtype": "m.text", "body": body})

    def unread(self, user: Any, room_id: str | None = None) -> dict[str, tuple[int, int]]:
        room = Room.objects.get(room_id=room_id or self.room_id)
        return unread_counts(user.user_id, [room.pk], current_position(Stream.EVENTS)).get(
            room.pk, {}
        )

    def listed(self, user: Any, query: str = "") -> list[str]:
        """The messages (not invites) in the user's GET /notifications."""
        body = self.api(user).get(f"{NOTIFICATIONS}{query}").body
        notes = body["notifications"]
        return [n["event"]["event_id"] for n in notes if n["event"]["type"] == "m.room.message"]


class SharedNotificationTests(SharedTestCase):
    def test_message_is_one_row_for_the_members(self) -> None:
        event_id = self.message(self.bob)
        self.assertEqual(SharedNotification.objects.filter(event_id=event_id).count(), 1)
        self.assertFalse(Notification.objects.filter(event_id=event_id).exists())
        self.assertEqual(
            set(NotificationExclusion.objects.values_list("user_id", flat=True)),
            {self.bob.user_id},
        )
        for user in [self.alice, *self.members]:
            self.assertEqual(self.unread(user), {"main": (1, 0)})
        self.assertEqual(self.unread(self.bob), {})
        room = self.sync(self.alice)["rooms"]["join"][self.room_id]
        self.assertEqual(
            room["unread_notifications"], {"notification_count": 1, "highlight_count": 0}
        )

    def test_late_joiner_does_not_count_earlier_messages(self) -> None:
        self.message(self.bob, "before")
        late = self.make_user("late")
        self.join(late)
        after = self.message(self.bob, "after")
        self.assertEqual(self.unread(late), {"main": (1, 0)})
        self.assertEqual(self.listed(late), [after])
        self.assertEqual(self.unread(self.alice), {"main": (2, 0)})

    def test_member_who_left_stops_counting(self) -> None:
        leaver = self.members[0]
        first = self.message(self.bob, "one")
        self.api(leaver).post(f"{CLIENT}/rooms/{self.room_id}/leave", {})
        self.message(self.bob, "while away")
        self.assertEqual(self.listed(leaver), [first])
        self.join(leaver)
        back = self.message(self.bob, "back")
        self.assertEqual(self.listed(leaver), [back, first])
        # Counts start again at the membership that brought them back.
        self.assertEqual(self.unread(leaver), {"main": (1, 0)})

    def test_kicked_member_stops_counting(self) -> None:
        kicked = self.members[1]
        first = self.message(self.bob)
        self.api(self.alice).post(
            f"{CLIENT}/rooms/{self.room_id}/kick", {"user_id": kicked.user_id}
        )
        self.message(self.bob)
        self.assertEqual(self.listed(kicked), [first])

    def test_sender_and_ignoring_members_are_not_counted(self) -> None:
        ignoring = self.members[0]
        self.api(ignoring).put(
            f"{CLIENT}/user/{ignoring.user_id}/account_data/m.ignored_user_list",
            {"ignored_users": {self.bob.user_id: {}}},
        )
        event_id = self.message(self.bob)
        self.assertTrue(SharedNotification.objects.filter(event_id=event_id).exists())
        self.assertEqual(self.unread(ignoring), {})
        self.assertEqual(self.unread(self.bob), {})
        self.assertEqual(self.listed(ignoring), [])
        self.assertEqual(self.unread(self.members[1]), {"main": (1, 0)})

    def test_highlight_for_one_member(self) -> None:
        content = {
            "msgtype": "m.text",
            "body": "alice!",
            "m.mentions": {"user_ids": [self.alice.user_id]},
        }
        event_id = self.send(self.bob, content)
        self.assertTrue(SharedNotification.objects.filter(event_id=event_id).exists())
        own = Notification.objects.get(event_id=event_id)
        self.assertEqual((own.user_id, own.highlight), (self.alice.user_id, True))
        self.assertEqual(self.unread(self.alice), {"main": (1, 1)})
        for user in self.members:
            self.assertEqual(self.unread(user), {"main": (1, 0)})
        self.assertEqual(self.listed(self.alice, "?only=highlight"), [event_id])
        self.assertEqual(self.listed(self.members[0], "?only=highlight"), [])

    def test_room_mention_by_a_moderator_highlights_everybody_in_one_row(self) -> None:
        content = {"msgtype": "m.text", "body": "all!", "m.mentions": {"room": True}}
        event_id = self.send(self.alice, content)
        self.assertTrue(SharedNotification.objects.get(event_id=event_id).highlight)
        for user in [self.bob, *self.members]:
            self.assertEqual(self.unread(user), {"main": (1, 1)})
        plain = self.send(self.bob, content)  # Bob may not notify the room
        self.assertFalse(SharedNotification.objects.get(event_id=plain).highlight)

    def test_read_receipts_clear_shared_notifications(self) -> None:
        first = self.message(self.bob, "one")
        self.message(self.bob, "two")
        path = f"{CLIENT}/rooms/{self.room_id}/receipt/m.read/{first}"
        self.api(self.alice).post(path, {})
        self.assertEqual(self.unread(self.alice), {"main": (1, 0)})
        body = self.api(self.alice).get(NOTIFICATIONS).body
        self.assertEqual([n["read"] for n in body["notifications"]], [False, True])

    def test_pages_across_shared_and_own_rows(self) -> None:
        mention = {
            "msgtype": "m.text",
            "body": "!",
            "m.mentions": {"user_ids": [self.alice.user_id]},
        }
        sent = []
        for i in range(7):
            sent.append(self.send(self.bob, mention) if i % 3 == 0 else self.message(self.bob))
        self.assertTrue(Notification.objects.filter(user_id=self.alice.user_id).exists())
        self.assertTrue(SharedNotification.objects.exists())
        seen: list[str] = []
        token = None
        for _ in range(10):
            query = "?limit=2" + (f"&from={token}" if token else "")
            body = self.api(self.alice).get(f"{NOTIFICATIONS}{query}").body
            for note in body["notifications"]:
                seen.append(note["event"]["event_id"])
                highlighted = {"set_tweak": "highlight"} in note["actions"]
                self.assertEqual(highlighted, sent.index(seen[-1]) % 3 == 0)
            token = body.get("next_token")
            if token is None:
                break
        self.assertEqual(seen, sent[::-1])

    def test_send_queries_do_not_grow_with_the_members(self) -> None:
        def queries_of_a_send() -> int:
            self.message(self.bob)  # the room's members are read (or kept) again here
            with CaptureQueriesContext(connection) as captured:
                self.message(self.bob)
            return len(captured.captured_queries)

        before = queries_of_a_send()
        for i in range(6):
            self.join(self.make_user(f"more{i}"))
        self.assertEqual(queries_of_a_send(), before)


class SameCountsTests(SharedTestCase):
    """A room whose members have rules of their own counts the same with shared rows as
    with a row per member."""

    def scenario(self, room_id: str) -> None:
        def send(user: Any, content: dict[str, Any]) -> str:
            return self.send_in(room_id, user, content)

        send(self.bob, {"msgtype": "m.text", "body": "hello"})
        root = send(self.members[0], {"msgtype": "m.text", "body": "root"})
        send(self.bob, {"msgtype": "m.text", "body": "I like cake"})
        reply = {
            "msgtype": "m.text",
            "body": "in thread",
            "m.relates_to": {"rel_type": "m.thread", "event_id": root},
        }
        in_thread = send(self.bob, reply)
        send(self.members[3], {"msgtype": "m.notice", "body": "notice"})
        send(self.bob, {"msgtype": "m.text", "body": "!", "m.mentions": {"room": True}})
        last = send(self.members[2], {"msgtype": "m.text", "body": "last"})
        receipts = f"{CLIENT}/rooms/{room_id}/receipt"
        self.api(self.members[3]).post(f"{receipts}/m.read/{in_thread}", {"thread_id": root})
        self.api(self.members[1]).post(f"{receipts}/m.read/{last}", {"thread_id": "main"})

    def counts_in_new_room(self, shared_min: int) -> dict[str, Any]:
        room_id = self.api(self.alice).post(f"{CLIENT}/createRoom", {}).body["room_id"]
        for user in [self.bob, *self.members]:
            self.join(user, room_id)
        with mock.patch.object(notifications, "SHARED_MIN_MEMBERS", shared_min):
            self.scenario(room_id)
        out: dict[str, Any] = {}
        for user in [self.alice, self.bob, *self.members]:
            listed = self.api(user).get(NOTIFICATIONS).body["notifications"]
            # Thread roots differ between the rooms: "main" or "thread".
            threads = {
                t if t == "main" else "thread": c for t, c in self.unread(user, room_id).items()
            }
            out[user.user_id] = (
                threads,
                [(n["actions"], n["read"]) for n in listed if n["room_id"] == room_id],
            )
        return out

    def test_mixed_room_counts_as_with_a_row_per_member(self) -> None:
        rules = f"{CLIENT}/pushrules/global"
        self.api(self.members[0]).put(f"{rules}/override/.m.rule.master/enabled", {"enabled": True})
        self.api(self.members[1]).put(
            f"{rules}/content/cake",
            {"pattern": "cake", "actions": ["notify", {"set_tweak": "highlight"}]},
        )
        self.api(self.members[2]).put(
            f"{rules}/underride/.m.rule.message/actions",
            {"actions": ["notify", {"set_tweak": "sound", "value": "x"}]},
        )
        per_member = self.counts_in_new_room(10**9)
        shared = self.counts_in_new_room(2)
        self.assertGreater(SharedNotification.objects.count(), 0)
        self.assertEqual(shared, per_member)
        self.assertEqual(per_member[self.members[0].user_id], ({}, []))


class SpanTests(SharedTestCase):
    def spans(self, user_id: str) -> list[tuple[int, int | None]]:
        rows = MembershipSpan.objects.filter(user_id=user_id, room__room_id=self.room_id)
        return sorted(rows.values_list("start_ordering", "end_ordering"), key=lambda r: r[0])

    def test_leave_and_join_close_and_open_spans(self) -> None:
        user = self.members[0]
        self.api(user).post(f"{CLIENT}/rooms/{self.room_id}/leave", {})
        self.join(user)
        spans = self.spans(user.user_id)
        self.assertEqual(len(spans), 2)
        self.assertIsNotNone(spans[0][1])
        self.assertLessEqual(spans[0][1] or 0, spans[1][0])
        self.assertIsNone(spans[1][1])

    def test_an_older_join_brought_back_does_not_overlap(self) -> None:
        room = Room.objects.get(room_id=self.room_id)
        user_id = self.members[0].user_id
        do_track_memberships(room, {user_id: ("leave", 10**6)})
        do_track_memberships(room, {user_id: ("join", 5)})
        self.assertEqual(self.spans(user_id)[-1], (10**6, None))

    def test_remote_users_have_no_spans(self) -> None:
        room = Room.objects.get(room_id=self.room_id)
        do_track_memberships(room, {"@someone:elsewhere.test": ("join", 1)})
        self.assertEqual(self.spans("@someone:elsewhere.test"), [])
