"""Bundled aggregations show only related events the reader may see: a user who left (or
was kicked) sees no edit, thread reply or reference posted after they left, on any path."""

from __future__ import annotations

import json
from typing import Any

from rooms.tests.base import V3, q
from sync.tests.test_sliding_sync import SlidingSyncTestCase

V1 = "/_matrix/client/v1"


def related(rel_type: str, target: str, body: str, **extra: Any) -> dict[str, Any]:
    return {
        "msgtype": "m.text",
        "body": body,
        **extra,
        "m.relates_to": {"rel_type": rel_type, "event_id": target},
    }


def edit(target: str, body: str) -> dict[str, Any]:
    return related("m.replace", target, f"* {body}", **{"m.new_content": {"body": body}})


class AfterLeavingTests(SlidingSyncTestCase):
    """Bob saw the root, one thread reply and a reply's first edit, and a second root;
    then he was kicked; then came an edit of the root, more replies, an edit of the first
    reply, a reference, and the first reply to the second root."""

    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, self.room)
        self.root = self.send_ok(self.alice, self.room, "root")
        self.reply = self.send_ok(
            self.alice, self.room, content=related("m.thread", self.root, "r1")
        )
        self.reply_edit = self.send_ok(self.alice, self.room, content=edit(self.reply, "r1 fixed"))
        self.quiet = self.send_ok(self.alice, self.room, "a root whose thread starts later")
        kick = self.api(self.alice).post(
            f"{V3}/rooms/{q(self.room)}/kick", {"user_id": self.bob.user_id}
        )
        self.assertEqual(kick.status_code, 200)
        self.send_ok(self.alice, self.room, content=edit(self.root, "secret edit"))
        self.send_ok(self.alice, self.room, content=related("m.thread", self.root, "secret r2"))
        self.send_ok(self.alice, self.room, content=edit(self.reply, "secret r1 edit"))
        self.send_ok(self.alice, self.room, content=related("m.reference", self.root, "secret ref"))
        self.send_ok(self.alice, self.room, content=related("m.thread", self.quiet, "secret q"))

    def assert_bob_view(self, root: dict[str, Any]) -> None:
        """The root as bob may see it: the thread as it was, no edit, no reference."""
        self.assertEqual(root["event_id"], self.root)
        relations = root["unsigned"]["m.relations"]
        self.assertEqual(set(relations), {"m.thread"})
        thread = relations["m.thread"]
        self.assertEqual((thread["count"], thread["latest_event"]["event_id"]), (1, self.reply))
        self.assertNotIn("secret", json.dumps(root))

    def test_event(self) -> None:
        url = f"{V3}/rooms/{q(self.room)}/event/{q(self.root)}"
        self.assert_bob_view(self.api(self.bob).get(url).body)

    def test_messages(self) -> None:
        chunk = self.messages(self.bob, self.room).body["chunk"]
        self.assert_bob_view(next(e for e in chunk if e["event_id"] == self.root))
        [reply] = [e for e in chunk if e["event_id"] == self.reply]
        self.assertEqual(reply["unsigned"]["m.relations"]["m.replace"]["event_id"], self.reply_edit)

    def test_context(self) -> None:
        url = f"{V3}/rooms/{q(self.room)}/context/{q(self.root)}"
        self.assert_bob_view(self.api(self.bob).get(url).body["event"])

    def test_relations(self) -> None:
        url = f"{V1}/rooms/{q(self.room)}/relations/{q(self.root)}"
        chunk = self.api(self.bob).get(url).body["chunk"]
        self.assertEqual([e["event_id"] for e in chunk], [self.reply])
        self.assertEqual(
            chunk[0]["unsigned"]["m.relations"]["m.replace"]["event_id"], self.reply_edit
        )
        self.assertNotIn("secret", json.dumps(chunk))

    def test_threads(self) -> None:
        chunk = self.api(self.bob).get(f"{V1}/rooms/{q(self.room)}/threads").body["chunk"]
        self.assertEqual([e["event_id"] for e in chunk], [self.root])  # not self.quiet
        self.assert_bob_view(chunk[0])

    def test_sync_leave_section(self) -> None:
        body = self.sync(self.bob, filter=json.dumps({"room": {"include_leave": True}}))
        events = body["rooms"]["leave"][self.room]["timeline"]["events"]
        self.assert_bob_view(next(e for e in events if e["event_id"] == self.root))
        self.assertNotIn("secret", json.dumps(body))

    def test_sliding_sync(self) -> None:
        everything = {"ranges": [[0, 9]], "timeline_limit": 20, "required_state": []}
        body = self.slide(self.bob, {"lists": {"all": everything}})
        room = body["rooms"][self.room]
        self.assertEqual(room["membership"], "leave")
        self.assert_bob_view(next(e for e in room["timeline"] if e["event_id"] == self.root))
        self.assertNotIn("secret", json.dumps(body))

    def test_members_still_see_everything(self) -> None:
        url = f"{V3}/rooms/{q(self.room)}/event/{q(self.root)}"
        relations = self.api(self.alice).get(url).body["unsigned"]["m.relations"]
        self.assertEqual(set(relations), {"m.thread", "m.replace", "m.reference"})
        self.assertEqual(relations["m.thread"]["count"], 2)


class HistoryVisibilityTests(SlidingSyncTestCase):
    def test_replies_sent_while_away_from_a_joined_only_room_are_not_counted(self) -> None:
        room = self.create_room(
            self.alice,
            preset="public_chat",
            initial_state=[
                {"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}}
            ],
        )
        self.join(self.bob, room)
        root = self.send_ok(self.alice, room, "root")
        self.leave(self.bob, room)
        self.send_ok(self.alice, room, content=related("m.thread", root, "secret"))
        self.send_ok(self.alice, room, content=edit(root, "secret edit"))
        self.join(self.bob, room)
        after = self.send_ok(self.alice, room, content=related("m.thread", root, "welcome back"))
        event = self.api(self.bob).get(f"{V3}/rooms/{q(room)}/event/{q(root)}").body
        thread = event["unsigned"]["m.relations"]["m.thread"]
        self.assertEqual((thread["count"], thread["latest_event"]["event_id"]), (1, after))
        self.assertNotIn("secret", json.dumps(event))
        synced = self.sync(self.bob)["rooms"]["join"][room]["timeline"]["events"]
        self.assertNotIn("secret", json.dumps(synced))

    def test_threads_lists_no_root_whose_replies_the_reader_cannot_see(self) -> None:
        room = self.create_room(
            self.alice,
            preset="public_chat",
            initial_state=[
                {"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}}
            ],
        )
        self.join(self.bob, room)
        root = self.send_ok(self.alice, room, "root")
        self.leave(self.bob, room)
        self.send_ok(self.alice, room, content=related("m.thread", root, "secret"))
        self.join(self.bob, room)
        url = f"{V1}/rooms/{q(room)}/threads"
        self.assertEqual(self.api(self.bob).get(url).body["chunk"], [])
        self.assertEqual(len(self.api(self.alice).get(url).body["chunk"]), 1)
