from __future__ import annotations

from rooms.tests.base import RoomTestCase, q

V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"


def thread_reply(root: str, body: str) -> dict:
    return {
        "msgtype": "m.text",
        "body": body,
        "m.relates_to": {"rel_type": "m.thread", "event_id": root},
    }


class RelationsTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, self.room)
        self.root = self.send_ok(self.alice, self.room, "root")

    def get_event(self, event_id: str) -> dict:
        return self.api(self.bob).get(f"{V3}/rooms/{q(self.room)}/event/{q(event_id)}").body

    def test_edit_is_bundled(self) -> None:
        edit = self.send_ok(
            self.alice,
            self.room,
            content={
                "msgtype": "m.text",
                "body": "* fixed",
                "m.new_content": {"msgtype": "m.text", "body": "fixed"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": self.root},
            },
        )
        replace = self.get_event(self.root)["unsigned"]["m.relations"]["m.replace"]
        self.assertEqual(replace["event_id"], edit)

    def test_edits_by_others_are_ignored(self) -> None:
        self.send_ok(
            self.bob,
            self.room,
            content={
                "body": "* hijack",
                "m.new_content": {"body": "hijack"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": self.root},
            },
        )
        self.assertNotIn("m.relations", self.get_event(self.root)["unsigned"])

    def test_thread_summary_is_bundled(self) -> None:
        self.send_ok(self.bob, self.room, content=thread_reply(self.root, "r1"))
        last = self.send_ok(self.alice, self.room, content=thread_reply(self.root, "r2"))
        thread = self.get_event(self.root)["unsigned"]["m.relations"]["m.thread"]
        self.assertEqual(thread["count"], 2)
        self.assertEqual(thread["latest_event"]["event_id"], last)
        self.assertIs(thread["current_user_participated"], True)

    def test_relations_endpoint_with_filters(self) -> None:
        reply = self.send_ok(self.bob, self.room, content=thread_reply(self.root, "r"))
        reaction = self.send_ok(
            self.bob,
            self.room,
            event_type="m.reaction",
            content={
                "m.relates_to": {"rel_type": "m.annotation", "event_id": self.root, "key": "👍"}
            },
        )
        base = f"{V1}/rooms/{q(self.room)}/relations/{q(self.root)}"
        everything = self.api(self.bob).get(base).body["chunk"]
        self.assertEqual([e["event_id"] for e in everything], [reaction, reply])
        threads = self.api(self.bob).get(f"{base}/m.thread").body["chunk"]
        self.assertEqual([e["event_id"] for e in threads], [reply])
        typed = self.api(self.bob).get(f"{base}/m.annotation/m.reaction").body["chunk"]
        self.assertEqual([e["event_id"] for e in typed], [reaction])
        forwards = self.api(self.bob).get(f"{base}?dir=f").body["chunk"]
        self.assertEqual([e["event_id"] for e in forwards], [reply, reaction])

    def test_relations_pagination_and_recursion(self) -> None:
        replies = [
            self.send_ok(self.bob, self.room, content=thread_reply(self.root, f"r{i}"))
            for i in range(3)
        ]
        base = f"{V1}/rooms/{q(self.room)}/relations/{q(self.root)}"
        page = self.api(self.bob).get(f"{base}?limit=2").body
        self.assertEqual([e["event_id"] for e in page["chunk"]], [replies[2], replies[1]])
        rest = self.api(self.bob).get(f"{base}?limit=2&from={page['next_batch']}").body
        self.assertEqual([e["event_id"] for e in rest["chunk"]], [replies[0]])
        reaction = self.send_ok(
            self.alice,
            self.room,
            event_type="m.reaction",
            content={
                "m.relates_to": {"rel_type": "m.annotation", "event_id": replies[0], "key": "x"}
            },
        )
        deep = self.api(self.bob).get(f"{base}?recurse=true").body
        self.assertIn(reaction, [e["event_id"] for e in deep["chunk"]])
        self.assertGreaterEqual(deep["recursion_depth"], 3)

    def test_threads_list(self) -> None:
        other = self.send_ok(self.bob, self.room, "other root")
        self.send_ok(self.bob, self.room, content=thread_reply(self.root, "a"))
        self.send_ok(self.alice, self.room, content=thread_reply(other, "b"))
        url = f"{V1}/rooms/{q(self.room)}/threads"
        roots = [e["event_id"] for e in self.api(self.alice).get(url).body["chunk"]]
        self.assertEqual(roots, [other, self.root])  # latest activity first
        page = self.api(self.alice).get(url + "?limit=1").body
        self.assertEqual(len(page["chunk"]), 1)
        rest = self.api(self.alice).get(url + f"?limit=1&from={page['next_batch']}").body
        self.assertEqual([e["event_id"] for e in rest["chunk"]], [self.root])
        mallory_room = self.api(self.mallory).get(url)
        self.assert_matrix_error(mallory_room, 403, "M_FORBIDDEN")

    def test_threads_participated(self) -> None:
        other = self.send_ok(self.bob, self.room, "bob's root")
        self.send_ok(self.bob, self.room, content=thread_reply(other, "b"))
        self.send_ok(self.bob, self.room, content=thread_reply(self.root, "a"))
        url = f"{V1}/rooms/{q(self.room)}/threads?include=participated"
        roots = [e["event_id"] for e in self.api(self.alice).get(url).body["chunk"]]
        self.assertEqual(roots, [self.root])  # alice wrote this root, not the other


class RedactionTests(RoomTestCase):
    def test_redaction_prunes_and_explains(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        target = self.send_ok(self.bob, room, "oops")
        url = f"{V3}/rooms/{q(room)}/redact/{q(target)}/txn1"
        response = self.api(self.bob).put(url, {"reason": "typo"})
        self.assertEqual(response.status_code, 200)
        again = self.api(self.bob).put(url, {"reason": "typo"})
        self.assertEqual(again.body, response.body)  # txnId dedup
        event = self.api(self.alice).get(f"{V3}/rooms/{q(room)}/event/{q(target)}").body
        self.assertEqual(event["content"], {})
        because = event["unsigned"]["redacted_because"]
        self.assertEqual(
            (because["event_id"], because["content"]["reason"]), (response.body["event_id"], "typo")
        )

    def test_cannot_redact_others_without_power(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        target = self.send_ok(self.alice, room, "mine")
        response = self.api(self.bob).put(f"{V3}/rooms/{q(room)}/redact/{q(target)}/t", {})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        event = self.api(self.bob).get(f"{V3}/rooms/{q(room)}/event/{q(target)}").body
        self.assertEqual(event["content"]["body"], "mine")

    def test_moderator_can_redact_others(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        target = self.send_ok(self.bob, room, "spam")
        self.api(self.alice).put(f"{V3}/rooms/{q(room)}/redact/{q(target)}/t", {})
        event = self.api(self.bob).get(f"{V3}/rooms/{q(room)}/event/{q(target)}").body
        self.assertEqual(event["content"], {})
