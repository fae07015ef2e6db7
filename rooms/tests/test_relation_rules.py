"""Which relations count: only within one room; edits only when valid (spec "Validity of
replacement events"); threads only off events that are not children of a relation."""

from __future__ import annotations

from typing import Any

from rooms.events import create_and_send_event
from rooms.tests.base import RoomTestCase, q

V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"


def relation(rel_type: str, target: str, **content: Any) -> dict[str, Any]:
    return {
        "msgtype": "m.text",
        "body": "related",
        **content,
        "m.relates_to": {"rel_type": rel_type, "event_id": target},
    }


def edit(target: str, body: str = "edited") -> dict[str, Any]:
    return relation("m.replace", target, body=f"* {body}", **{"m.new_content": {"body": body}})


class SameRoomTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, self.room)
        self.root = self.send_ok(self.alice, self.room, "root")
        self.elsewhere = self.create_room(self.alice, preset="public_chat")

    def arrive_elsewhere(self, content: dict[str, Any], event_type: str = "m.room.message") -> str:
        """An event of the other room relating to our root, stored as federation would
        store a remote server's (the client API refuses to send it)."""
        event = create_and_send_event(self.alice.user_id, self.elsewhere, event_type, content)
        return event.event_id

    def test_relations_from_another_room_are_not_aggregated(self) -> None:
        self.arrive_elsewhere(edit(self.root, "from elsewhere"))
        self.arrive_elsewhere(relation("m.thread", self.root))
        self.arrive_elsewhere(relation("m.reference", self.root))
        url = f"{V3}/rooms/{q(self.room)}/event/{q(self.root)}"
        self.assertNotIn("m.relations", self.api(self.bob).get(url).body["unsigned"])
        chunk = self.messages(self.bob, self.room).body["chunk"]
        [root] = [e for e in chunk if e["event_id"] == self.root]
        self.assertNotIn("m.relations", root["unsigned"])
        threads = self.api(self.bob).get(f"{V1}/rooms/{q(self.room)}/threads").body["chunk"]
        self.assertEqual(threads, [])

    def test_relations_endpoint_stays_in_the_room(self) -> None:
        here = self.send_ok(self.bob, self.room, content=relation("m.thread", self.root))
        there = self.arrive_elsewhere(relation("m.thread", self.root))
        # A child of the foreign event in our room is not reached through it either.
        create_and_send_event(
            self.bob.user_id,
            self.room,
            "m.reaction",
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": there, "key": "x"}},
        )
        url = f"{V1}/rooms/{q(self.room)}/relations/{q(self.root)}?recurse=true"
        chunk = self.api(self.bob).get(url).body["chunk"]
        self.assertEqual([e["event_id"] for e in chunk], [here])

    def test_a_thread_in_both_rooms_counts_only_its_own(self) -> None:
        mine = self.send_ok(self.bob, self.room, content=relation("m.thread", self.root))
        self.arrive_elsewhere(relation("m.thread", self.root))
        url = f"{V3}/rooms/{q(self.room)}/event/{q(self.root)}"
        thread = self.api(self.bob).get(url).body["unsigned"]["m.relations"]["m.thread"]
        self.assertEqual((thread["count"], thread["latest_event"]["event_id"]), (1, mine))

    def test_sending_a_relation_to_an_event_of_another_room_is_refused(self) -> None:
        for content in (edit(self.root), relation("m.thread", self.root)):
            response = self.api(self.alice).put(
                f"{V3}/rooms/{q(self.elsewhere)}/send/m.room.message/x{len(content)}", content
            )
            self.assert_matrix_error(response, 400, "M_UNKNOWN")


class EditValidityTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, self.room)

    def replacement(self, target: str) -> dict[str, Any] | None:
        url = f"{V3}/rooms/{q(self.room)}/event/{q(target)}"
        return self.api(self.bob).get(url).body["unsigned"].get("m.relations", {}).get("m.replace")

    def test_an_edit_without_new_content_is_ignored(self) -> None:
        root = self.send_ok(self.alice, self.room, "root")
        self.send_ok(self.alice, self.room, content=relation("m.replace", root, body="* x"))
        self.assertIsNone(self.replacement(root))

    def test_an_edit_of_another_type_is_ignored(self) -> None:
        root = self.send_ok(self.alice, self.room, "root")
        self.send_ok(self.alice, self.room, event_type="m.sticker", content=edit(root))
        self.assertIsNone(self.replacement(root))

    def test_state_events_cannot_be_edited(self) -> None:
        topic = self.set_state(self.alice, self.room, "m.room.topic", {"topic": "t"})
        self.send_ok(
            self.alice, self.room, event_type="m.room.topic", content=edit(topic.body["event_id"])
        )
        self.assertIsNone(self.replacement(topic.body["event_id"]))
        root = self.send_ok(self.alice, self.room, "root")
        as_state = self.set_state(self.alice, self.room, "m.room.message", edit(root), "k")
        self.assertEqual(as_state.status_code, 200)
        self.assertIsNone(self.replacement(root))

    def test_an_edit_of_an_edit_is_ignored(self) -> None:
        root = self.send_ok(self.alice, self.room, "root")
        first = self.send_ok(self.alice, self.room, content=edit(root, "one"))
        self.send_ok(self.alice, self.room, content=edit(first, "two"))
        self.assertIsNone(self.replacement(first))
        self.assertEqual(self.replacement(root)["event_id"], first)  # type: ignore[index]

    def test_the_most_recent_valid_edit_wins(self) -> None:
        root = self.send_ok(self.alice, self.room, "root")
        valid = self.send_ok(self.alice, self.room, content=edit(root, "one"))
        self.send_ok(self.alice, self.room, content=relation("m.replace", root, body="* no"))
        self.send_ok(self.bob, self.room, content=edit(root, "not yours"))
        self.assertEqual(self.replacement(root)["event_id"], valid)  # type: ignore[index]


class ThreadRootTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, self.room)
        self.root = self.send_ok(self.alice, self.room, "root")

    def test_a_thread_off_a_thread_reply_is_refused(self) -> None:
        reply = self.send_ok(self.bob, self.room, content=relation("m.thread", self.root))
        response = self.send(self.bob, self.room, content=relation("m.thread", reply))
        self.assert_matrix_error(response, 400, "M_UNKNOWN")

    def test_a_thread_off_a_reply_is_allowed(self) -> None:
        reply = self.send_ok(
            self.bob,
            self.room,
            content={"body": "re", "m.relates_to": {"m.in_reply_to": {"event_id": self.root}}},
        )
        self.send_ok(self.alice, self.room, content=relation("m.thread", reply))
        url = f"{V3}/rooms/{q(self.room)}/event/{q(reply)}"
        self.assertIn("m.thread", self.api(self.bob).get(url).body["unsigned"]["m.relations"])

    def test_threads_off_children_of_relations_are_not_aggregated(self) -> None:
        reference = self.send_ok(self.bob, self.room, content=relation("m.reference", self.root))
        create_and_send_event(
            self.alice.user_id, self.room, "m.room.message", relation("m.thread", reference)
        )
        url = f"{V3}/rooms/{q(self.room)}/event/{q(reference)}"
        self.assertNotIn("m.relations", self.api(self.bob).get(url).body["unsigned"])
        threads = self.api(self.bob).get(f"{V1}/rooms/{q(self.room)}/threads").body["chunk"]
        self.assertEqual(threads, [])
