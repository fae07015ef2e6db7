"""unread_notifications and unread_thread_notifications in /sync and sliding sync,
cleared by read receipts."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from push.tests.test_evaluation import CLIENT, PushTestCase
from sync.tests.test_sliding_sync import SlidingSyncTestCase


def counts(notifications: int, highlights: int) -> dict[str, int]:
    return {"notification_count": notifications, "highlight_count": highlights}


class UnreadCountTests(PushTestCase):
    def joined(self, user: Any, since: str | None = None, **params: str) -> dict[str, Any]:
        body = self.sync(user, since, **params)
        return body["rooms"]["join"]  # type: ignore[no-any-return]

    def mention(self) -> str:
        content = {
            "msgtype": "m.text",
            "body": "!",
            "m.mentions": {"user_ids": [self.alice.user_id]},
        }
        return self.send(self.bob, content)

    def receipt(self, event_id: str, kind: str = "m.read", thread: str | None = None) -> None:
        body = {} if thread is None else {"thread_id": thread}
        self.api(self.alice).post(f"{CLIENT}/rooms/{self.room_id}/receipt/{kind}/{event_id}", body)

    def test_counts_notifications_and_highlights(self) -> None:
        self.send(self.bob, {"msgtype": "m.text", "body": "hi"})
        self.mention()
        room = self.joined(self.alice)[self.room_id]
        self.assertEqual(room["unread_notifications"], counts(2, 1))
        self.assertNotIn("unread_thread_notifications", room)
        self.assertEqual(self.joined(self.bob)[self.room_id]["unread_notifications"], counts(0, 0))

    def test_read_receipt_clears_what_it_covers(self) -> None:
        first = self.send(self.bob, {"msgtype": "m.text", "body": "one"})
        self.mention()
        since = self.sync(self.alice)["next_batch"]
        self.receipt(first)
        room = self.joined(self.alice, since)[self.room_id]
        self.assertEqual(room["unread_notifications"], counts(1, 1))

    def test_private_receipt_clears_too(self) -> None:
        last = self.mention()
        since = self.sync(self.alice)["next_batch"]
        self.receipt(last, "m.read.private")
        room = self.joined(self.alice, since)[self.room_id]
        self.assertEqual(room["unread_notifications"], counts(0, 0))

    def thread(self) -> tuple[str, str]:
        root = self.send(self.alice, {"msgtype": "m.text", "body": "root"})
        reply = {
            "msgtype": "m.text",
            "body": "in thread",
            "m.mentions": {"user_ids": [self.alice.user_id]},
            "m.relates_to": {"rel_type": "m.thread", "event_id": root},
        }
        in_thread = self.send(self.bob, reply)
        return root, in_thread

    def test_thread_counts_when_the_filter_asks(self) -> None:
        root, _ = self.thread()
        main = self.send(self.bob, {"msgtype": "m.text", "body": "main"})
        plain = self.joined(self.alice)[self.room_id]
        self.assertEqual(plain["unread_notifications"], counts(2, 1))
        wanted = json.dumps({"room": {"timeline": {"unread_thread_notifications": True}}})
        room = self.joined(self.alice, filter=wanted)[self.room_id]
        self.assertEqual(room["unread_notifications"], counts(1, 0))
        self.assertEqual(room["unread_thread_notifications"], {root: counts(1, 1)})
        self.receipt(main, thread="main")
        room = self.joined(self.alice, filter=wanted)[self.room_id]
        self.assertEqual(room["unread_notifications"], counts(0, 0))
        self.assertEqual(room["unread_thread_notifications"], {root: counts(1, 1)})

    def test_threaded_receipt_clears_its_thread_only(self) -> None:
        root, in_thread = self.thread()
        self.send(self.bob, {"msgtype": "m.text", "body": "main"})
        self.receipt(in_thread, thread=root)
        wanted = json.dumps({"room": {"timeline": {"unread_thread_notifications": True}}})
        room = self.joined(self.alice, filter=wanted)[self.room_id]
        self.assertEqual(room["unread_notifications"], counts(1, 0))
        self.assertNotIn("unread_thread_notifications", room)

    def test_unthreaded_receipt_clears_every_thread(self) -> None:
        self.thread()
        last = self.send(self.bob, {"msgtype": "m.text", "body": "main"})
        self.receipt(last)
        room = self.joined(self.alice)[self.room_id]
        self.assertEqual(room["unread_notifications"], counts(0, 0))

    def test_one_query_for_all_rooms(self) -> None:
        for _ in range(3):
            room_id = self.api(self.bob).post(f"{CLIENT}/createRoom", {}).body["room_id"]
            self.api(self.bob).post(
                f"{CLIENT}/rooms/{room_id}/invite", {"user_id": self.alice.user_id}
            )
            self.api(self.alice).post(f"{CLIENT}/join/{room_id}", {})
            self.api(self.bob).put(
                f"{CLIENT}/rooms/{room_id}/send/m.room.message/x",
                {"msgtype": "m.text", "body": "x"},
            )
        with CaptureQueriesContext(connection) as queries:
            rooms = self.joined(self.alice)
        self.assertEqual(len(rooms), 4)
        unread = [q for q in queries.captured_queries if "push_notification" in q["sql"]]
        self.assertEqual(len(unread), 1)
        for room in rooms.values():
            self.assertIn("unread_notifications", room)


class SlidingUnreadTests(SlidingSyncTestCase):
    def test_room_carries_its_counts(self) -> None:
        room_id = self.api(self.bob).post(f"{CLIENT}/createRoom", {}).body["room_id"]
        self.api(self.bob).post(f"{CLIENT}/rooms/{room_id}/invite", {"user_id": self.alice.user_id})
        self.api(self.alice).post(f"{CLIENT}/join/{room_id}", {})
        mention = {
            "msgtype": "m.text",
            "body": "!",
            "m.mentions": {"user_ids": [self.alice.user_id]},
        }
        self.api(self.bob).put(f"{CLIENT}/rooms/{room_id}/send/m.room.message/a", mention)
        body = {"lists": {"all": {"ranges": [[0, 9]], "timeline_limit": 1}}}
        room = self.slide(self.alice, body)["rooms"][room_id]
        self.assertEqual((room["notification_count"], room["highlight_count"]), (1, 1))
