"""The number of queries of a sync does not grow with the number of rooms (no N+1)."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from sync.tests.test_sliding_sync import EVERYTHING, SlidingSyncTestCase


class QueryCountTests(SlidingSyncTestCase):
    def rooms(self, count: int) -> None:
        for i in range(count):
            room = self.create_room(self.alice, preset="public_chat", name=f"R{i}")
            self.join(self.bob, room)
            self.send_ok(self.alice, room, "hello")

    def count(self, call: object) -> int:
        """Queries of a call made a second time (the first warms the event cache and marks
        the user present, which are not per-room costs)."""
        call()  # type: ignore[operator]
        with CaptureQueriesContext(connection) as queries:
            call()  # type: ignore[operator]
        return len(queries.captured_queries)

    def test_initial_classic_sync(self) -> None:
        self.rooms(2)
        few = self.count(lambda: self.sync(self.bob))
        self.rooms(5)
        many = self.count(lambda: self.sync(self.bob))
        self.assertEqual(few, many)

    def test_incremental_classic_sync(self) -> None:
        self.rooms(2)
        token = self.sync(self.bob)["next_batch"]
        self.rooms(1)
        few = self.count(lambda: self.sync(self.bob, since=token))
        self.rooms(4)
        many = self.count(lambda: self.sync(self.bob, since=token))
        self.assertEqual(few, many)

    def threads(self, count: int) -> None:
        for i in range(count):
            room = self.create_room(self.alice, preset="public_chat", name=f"T{i}")
            self.join(self.bob, room)
            root = self.send_ok(self.alice, room, "root")
            related = {"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
            self.send_ok(self.bob, room, content={"body": "reply", **related})
            edit = {"body": "* e", "m.new_content": {"body": "e"}}
            edit["m.relates_to"] = {"rel_type": "m.replace", "event_id": root}
            self.send_ok(self.alice, room, content=edit)

    def test_initial_syncs_with_relations(self) -> None:
        """Bundled aggregations (and their visibility) cost the same for 2 rooms as for 6."""
        self.threads(2)
        few = self.count(lambda: self.sync(self.bob))
        few_sliding = self.count(lambda: self.slide(self.bob, {"lists": {"all": EVERYTHING}}))
        self.threads(4)
        self.assertEqual(few, self.count(lambda: self.sync(self.bob)))
        sliding = self.count(lambda: self.slide(self.bob, {"lists": {"all": EVERYTHING}}))
        self.assertEqual(few_sliding, sliding)

    def kicked_from(self, count: int) -> None:
        for i in range(count):
            room = self.create_room(self.alice, preset="public_chat", name=f"K{i}")
            self.join(self.bob, room)
            self.api(self.alice).post(
                f"/_matrix/client/v3/rooms/{room}/kick", {"user_id": self.bob.user_id}
            )

    def test_sliding_sync_with_left_rooms(self) -> None:
        """Rooms the user left are seen in their state at the leave, read in batches."""
        self.rooms(1)
        self.kicked_from(2)
        few = self.count(lambda: self.slide(self.bob, {"lists": {"all": EVERYTHING}}))
        self.kicked_from(4)
        many = self.count(lambda: self.slide(self.bob, {"lists": {"all": EVERYTHING}}))
        self.assertEqual(few, many)

    def test_initial_sliding_sync(self) -> None:
        self.rooms(2)
        few = self.count(lambda: self.slide(self.bob, {"lists": {"all": EVERYTHING}}))
        self.rooms(5)
        many = self.count(lambda: self.slide(self.bob, {"lists": {"all": EVERYTHING}}))
        self.assertEqual(few, many)
