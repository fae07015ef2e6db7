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

    def test_messages_with_relations_cost_the_same_whatever_the_page_size(self) -> None:
        """Edits, thread summaries and references (and their visibility) are read in
        batches, not per event."""
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        for i in range(12):
            root = self.send_ok(self.alice, room, f"root {i}")
            related = {"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
            self.send_ok(self.bob, room, content={"body": "reply", **related})
            edit = {"body": "* e", "m.new_content": {"body": "e"}}
            edit["m.relates_to"] = {"rel_type": "m.replace", "event_id": root}
            self.send_ok(self.alice, room, content=edit)
            reference = {"m.relates_to": {"rel_type": "m.reference", "event_id": root}}
            self.send_ok(self.bob, room, content={"body": "ref", **reference})
        self.leave(self.bob, room)
        small = self.queries(lambda: self.messages(self.bob, room, "dir=b&limit=8"))
        large = self.queries(lambda: self.messages(self.bob, room, "dir=b&limit=48"))
        self.assertEqual(small, large)

    def test_send_costs_the_same_in_a_long_room(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        early = self.queries(lambda: self.send_ok(self.alice, room, "x"))
        for i in range(20):
            self.send_ok(self.alice, room, f"m{i}")
        late = self.queries(lambda: self.send_ok(self.alice, room, "y"))
        self.assertEqual(early, late)
        self.assertLessEqual(late, 17)  # the search index row is one of them
