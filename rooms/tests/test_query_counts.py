"""Hot paths do a fixed number of queries: /messages whatever the page size, and send
whatever the history of the room."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from rooms.tests.base import RoomTestCase


class QueryCountTests(RoomTestCase):
    def queries(self, call: object) -> int:
        call()  # type: ignore[operator]  (warms the event cache)
        with CaptureQueriesContext(connection) as captured:
            call()  # type: ignore[operator]
        return len(captured.captured_queries)

    def test_messages_page_size_does_not_add_queries(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        for i in range(30):
            self.send_ok(self.alice if i % 2 else self.bob, room, f"m{i}")
        small = self.queries(lambda: self.messages(self.bob, room, "dir=b&limit=3"))
        large = self.queries(lambda: self.messages(self.bob, room, "dir=b&limit=30"))
        self.assertEqual(small, large)

    def test_send_costs_the_same_in_a_long_room(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        early = self.queries(lambda: self.send_ok(self.alice, room, "x"))
        for i in range(20):
            self.send_ok(self.alice, room, f"m{i}")
        late = self.queries(lambda: self.send_ok(self.alice, room, "y"))
        self.assertEqual(early, late)
        self.assertLessEqual(late, 16)
