"""Ignoring users (spec "Ignoring Users"): what an ignored user sends, but state, is not
served to the one ignoring them (/sync, sliding sync, /messages, /context, /event,
/relations, /threads, and the thread summaries and references bundled with other
events), their invites are hidden and they notify no one who ignores them."""

from __future__ import annotations

import json
from typing import Any

from push.models import Notification
from rooms.tests.base import V3, q
from rooms.tests.test_relations import V1, thread_reply
from sync.tests.test_sliding_sync import EVERYTHING, SlidingSyncTestCase

IGNORE_LIST = "m.ignored_user_list"


def bodies(events: list[dict[str, Any]]) -> list[str]:
    return [e["content"]["body"] for e in events if e["type"] == "m.room.message"]


class IgnoredUsersTests(SlidingSyncTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, self.room)
        self.join(self.mallory, self.room)

    def ignore(self, *users: Any) -> None:
        content = {"ignored_users": {u.user_id: {} for u in users}}
        path = f"{V3}/user/{q(self.bob.user_id)}/account_data/{IGNORE_LIST}"
        self.assertEqual(self.api(self.bob).put(path, content).status_code, 200)

    def test_sync_leaves_out_messages_but_not_state_of_ignored_users(self) -> None:
        self.ignore(self.mallory)
        self.send_ok(self.alice, self.room, "from alice")
        self.send_ok(self.mallory, self.room, "from mallory")
        renamed = self.set_state(
            self.mallory,
            self.room,
            "m.room.member",
            {"membership": "join", "displayname": "Mal"},
            self.mallory.user_id,
        )
        self.assertEqual(renamed.status_code, 200, renamed.body)
        body = self.sync(self.bob)
        events = body["rooms"]["join"][self.room]["timeline"]["events"]
        self.assertEqual(bodies(events), ["from alice"])
        self.assertIn(renamed.body["event_id"], [e["event_id"] for e in events])
        token = body["next_batch"]
        self.send_ok(self.mallory, self.room, "again")
        self.send_ok(self.alice, self.room, "alice again")
        later = self.sync(self.bob, since=token)
        self.assertEqual(
            bodies(later["rooms"]["join"][self.room]["timeline"]["events"]), ["alice again"]
        )

    def test_limit_counts_only_the_events_sent(self) -> None:
        self.ignore(self.mallory)
        for i in range(3):
            self.send_ok(self.alice, self.room, f"a{i}")
            self.send_ok(self.mallory, self.room, f"m{i}")
        timeline_filter = json.dumps({"room": {"timeline": {"limit": 3}}})
        events = self.sync(self.bob, filter=timeline_filter)["rooms"]["join"][self.room]
        self.assertEqual(bodies(events["timeline"]["events"]), ["a0", "a1", "a2"])

    def test_unignoring_restores_future_events_only(self) -> None:
        self.ignore(self.mallory)
        token = self.sync(self.bob)["next_batch"]
        self.send_ok(self.mallory, self.room, "while ignored")
        body = self.sync(self.bob, since=token)
        self.assertNotIn(self.room, body["rooms"].get("join", {}))
        self.ignore()
        after_change = self.sync(self.bob, since=body["next_batch"])
        # The change itself reaches the client at once, the missed event does not.
        account_data = [e["type"] for e in after_change["account_data"]["events"]]
        self.assertIn(IGNORE_LIST, account_data)
        self.assertNotIn(self.room, after_change["rooms"].get("join", {}))
        self.send_ok(self.mallory, self.room, "after")
        later = self.sync(self.bob, since=after_change["next_batch"])
        self.assertEqual(bodies(later["rooms"]["join"][self.room]["timeline"]["events"]), ["after"])
        # A fresh sync has everything again.
        fresh = self.sync(self.bob)["rooms"]["join"][self.room]["timeline"]["events"]
        self.assertEqual(bodies(fresh), ["while ignored", "after"])

    def test_messages_and_context_leave_out_ignored_users(self) -> None:
        first = self.send_ok(self.alice, self.room, "one")
        self.send_ok(self.mallory, self.room, "two")
        self.send_ok(self.alice, self.room, "three")
        self.ignore(self.mallory)
        self.assertEqual(self.timeline_bodies(self.bob, self.room), ["one", "three"])
        self.assertEqual(self.timeline_bodies(self.alice, self.room), ["one", "two", "three"])
        forwards = self.messages(self.bob, self.room, "dir=f&limit=50").body["chunk"]
        self.assertIn("m.room.member", [e["type"] for e in forwards])  # mallory's join
        self.assertEqual(bodies(forwards), ["one", "three"])
        context = (
            self.api(self.bob).get(f"{V3}/rooms/{q(self.room)}/context/{q(first)}?limit=10").body
        )
        self.assertEqual(bodies(context["events_after"]), ["three"])

    def test_event_and_context_of_an_ignored_user_are_not_found(self) -> None:
        theirs = self.send_ok(self.mallory, self.room, "from mallory")
        self.ignore(self.mallory)
        for path in (f"event/{q(theirs)}", f"context/{q(theirs)}"):
            got = self.api(self.bob).get(f"{V3}/rooms/{q(self.room)}/{path}")
            self.assert_matrix_error(got, 404, "M_NOT_FOUND")
            self.assertEqual(
                self.api(self.alice).get(f"{V3}/rooms/{q(self.room)}/{path}").status_code, 200
            )
        # Their state is still served, like in /sync.
        renamed = self.set_state(
            self.mallory,
            self.room,
            "m.room.member",
            {"membership": "join", "displayname": "Mal"},
            self.mallory.user_id,
        ).body["event_id"]
        got = self.api(self.bob).get(f"{V3}/rooms/{q(self.room)}/event/{q(renamed)}")
        self.assertEqual(got.status_code, 200, got.body)

    def test_invites_from_ignored_users_are_hidden_in_sliding_sync(self) -> None:
        self.ignore(self.mallory)
        from_mallory = self.create_room(self.mallory)
        self.invite(self.mallory, from_mallory, self.bob)
        from_alice = self.create_room(self.alice)
        self.invite(self.alice, from_alice, self.bob)
        rooms = self.slide(self.bob, {"lists": {"all": EVERYTHING}})["rooms"]
        self.assertIn(from_alice, rooms)
        self.assertNotIn(from_mallory, rooms)

    def test_sliding_sync_timeline_leaves_out_ignored_users(self) -> None:
        self.ignore(self.mallory)
        self.send_ok(self.alice, self.room, "from alice")
        self.send_ok(self.mallory, self.room, "from mallory")
        body = self.slide(self.bob, {"lists": {"all": EVERYTHING}})
        self.assertEqual(bodies(body["rooms"][self.room]["timeline"]), ["from alice"])
        self.send_ok(self.mallory, self.room, "later from mallory")
        self.send_ok(self.alice, self.room, "later from alice")
        later = self.slide(self.bob, {"lists": {"all": EVERYTHING}}, pos=body["pos"])
        self.assertEqual(bodies(later["rooms"][self.room]["timeline"]), ["later from alice"])

    def test_ignored_users_neither_wake_nor_bump_a_room_in_sliding_sync(self) -> None:
        self.ignore(self.mallory)
        other = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, other)
        body = self.slide(self.bob, {"lists": {"all": EVERYTHING}})
        stamps = {room: body["rooms"][room]["bump_stamp"] for room in (self.room, other)}
        self.send_ok(self.mallory, self.room, "unseen")
        later = self.slide(self.bob, {"lists": {"all": EVERYTHING}}, pos=body["pos"])
        self.assertNotIn(self.room, later["rooms"])
        fresh = self.slide(self.bob, {"lists": {"all": EVERYTHING}})["rooms"]
        self.assertEqual({room: fresh[room]["bump_stamp"] for room in stamps}, stamps)
        self.assertEqual(next(iter(fresh)), other)  # still the most recently active

    def test_ignored_sender_notifies_no_one_who_ignores_them(self) -> None:
        self.ignore(self.mallory)
        from_mallory = self.send_ok(self.mallory, self.room, "ping")
        notified = set(
            Notification.objects.filter(event_id=from_mallory).values_list("user_id", flat=True)
        )
        self.assertEqual(notified, {self.alice.user_id})
        from_alice = self.send_ok(self.alice, self.room, "pong")
        notified = set(
            Notification.objects.filter(event_id=from_alice).values_list("user_id", flat=True)
        )
        self.assertEqual(notified, {self.bob.user_id, self.mallory.user_id})

    def test_invite_from_an_ignored_user_does_not_notify(self) -> None:
        self.ignore(self.mallory)
        private = self.create_room(self.mallory)
        self.invite(self.mallory, private, self.bob)
        self.assertFalse(Notification.objects.filter(user_id=self.bob.user_id).exists())

    def test_a_malformed_list_ignores_no_one(self) -> None:
        path = f"{V3}/user/{q(self.bob.user_id)}/account_data/{IGNORE_LIST}"
        self.api(self.bob).put(path, {"ignored_users": ["@mallory:test.local"]})
        self.send_ok(self.mallory, self.room, "still here")
        self.assertEqual(self.timeline_bodies(self.bob, self.room), ["still here"])


class IgnoredUsersInRelationsTests(SlidingSyncTestCase):
    """Bob ignores Mallory; Alice sees everything."""

    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, self.room)
        self.join(self.mallory, self.room)
        self.root = self.send_ok(self.alice, self.room, "root")
        path = f"{V3}/user/{q(self.bob.user_id)}/account_data/{IGNORE_LIST}"
        ignore = {"ignored_users": {self.mallory.user_id: {}}}
        self.assertEqual(self.api(self.bob).put(path, ignore).status_code, 200)

    def reply(self, user: Any, body: str, root: str | None = None) -> str:
        return self.send_ok(user, self.room, content=thread_reply(root or self.root, body))

    def relations(self, user: Any, path: str = "", query: str = "") -> Any:
        got = self.api(user).get(f"{V1}/rooms/{q(self.room)}/relations/{q(self.root)}{path}{query}")
        self.assertEqual(got.status_code, 200, got.body)
        return got.body

    def threads(self, user: Any, query: str = "") -> list[dict[str, Any]]:
        got = self.api(user).get(f"{V1}/rooms/{q(self.room)}/threads{query}")
        self.assertEqual(got.status_code, 200, got.body)
        return list(got.body["chunk"])

    def summary_of(self, event: dict[str, Any]) -> tuple[int, str] | None:
        thread = event["unsigned"].get("m.relations", {}).get("m.thread")
        return (thread["count"], thread["latest_event"]["event_id"]) if thread else None

    def test_relations_leave_out_ignored_users_before_the_limit(self) -> None:
        first = self.reply(self.alice, "a1")
        self.reply(self.mallory, "m1")
        self.reply(self.mallory, "m2")
        second = self.reply(self.alice, "a2")
        self.send_ok(
            self.mallory,
            self.room,
            event_type="m.reaction",
            content={
                "m.relates_to": {"rel_type": "m.annotation", "event_id": self.root, "key": "x"}
            },
        )
        everything = self.relations(self.alice)
        self.assertEqual(len(everything["chunk"]), 5)
        at_bob = self.relations(self.bob)["chunk"]
        self.assertEqual([e["event_id"] for e in at_bob], [second, first])
        page = self.relations(self.bob, "/m.thread", "?limit=1")
        self.assertEqual([e["event_id"] for e in page["chunk"]], [second])
        rest = self.relations(self.bob, "/m.thread", f"?limit=1&from={page['next_batch']}")
        self.assertEqual([e["event_id"] for e in rest["chunk"]], [first])
        self.assertEqual(self.relations(self.bob, "/m.annotation")["chunk"], [])

    def test_thread_summary_counts_only_replies_the_reader_gets(self) -> None:
        own = self.reply(self.alice, "a1")
        self.reply(self.mallory, "m1")
        event_path = f"{V3}/rooms/{q(self.room)}/event/{q(self.root)}"
        at_alice = self.api(self.alice).get(event_path).body
        self.assertEqual(self.summary_of(at_alice)[0], 2)
        # Mallory's reply is the latest, so Bob's summary falls back to Alice's.
        self.assertEqual(self.summary_of(self.api(self.bob).get(event_path).body), (1, own))
        chunk = self.messages(self.bob, self.room).body["chunk"]
        root = next(e for e in chunk if e["event_id"] == self.root)
        self.assertEqual(self.summary_of(root), (1, own))
        timeline = self.sync(self.bob)["rooms"]["join"][self.room]["timeline"]["events"]
        root = next(e for e in timeline if e["event_id"] == self.root)
        self.assertEqual(self.summary_of(root), (1, own))
        slid = self.slide(self.bob, {"lists": {"all": EVERYTHING}})
        root = next(e for e in slid["rooms"][self.room]["timeline"] if e["event_id"] == self.root)
        self.assertEqual(self.summary_of(root), (1, own))

    def test_no_summary_when_only_ignored_users_replied(self) -> None:
        self.reply(self.mallory, "m1")
        self.reply(self.mallory, "m2")
        bob = self.api(self.bob).get(f"{V3}/rooms/{q(self.room)}/event/{q(self.root)}").body
        self.assertIsNone(self.summary_of(bob))
        alice = self.api(self.alice).get(f"{V3}/rooms/{q(self.room)}/event/{q(self.root)}").body
        self.assertEqual(self.summary_of(alice)[0], 2)

    def test_bundled_references_leave_out_ignored_users(self) -> None:
        def reference(user: Any) -> str:
            relation = {"rel_type": "m.reference", "event_id": self.root}
            content = {"body": "see", "m.relates_to": relation}
            return self.send_ok(user, self.room, content=content)

        mine = reference(self.alice)
        reference(self.mallory)
        path = f"{V3}/rooms/{q(self.room)}/event/{q(self.root)}"
        bundled = self.api(self.bob).get(path).body["unsigned"]["m.relations"]["m.reference"]
        self.assertEqual(bundled, {"chunk": [{"event_id": mine}]})
        at_alice = self.api(self.alice).get(path).body["unsigned"]["m.relations"]["m.reference"]
        self.assertEqual(len(at_alice["chunk"]), 2)

    def test_threads_leave_out_ignored_roots_and_replies(self) -> None:
        self.reply(self.alice, "a1")
        theirs = self.send_ok(self.mallory, self.room, "mallory's root")
        self.reply(self.alice, "a2", root=theirs)
        lonely = self.send_ok(self.alice, self.room, "lonely")
        self.reply(self.mallory, "m1", root=lonely)
        self.reply(self.mallory, "m2")  # the latest activity of the first thread
        at_alice = [e["event_id"] for e in self.threads(self.alice)]
        self.assertEqual(at_alice, [self.root, lonely, theirs])
        at_bob = self.threads(self.bob)
        self.assertEqual([e["event_id"] for e in at_bob], [self.root])
        self.assertEqual(self.summary_of(at_bob[0])[0], 1)
        # Bob's own thread activity: a reply of his, then more from Mallory on top.
        self.reply(self.bob, "b1", root=lonely)
        self.reply(self.mallory, "m3", root=lonely)
        self.assertEqual([e["event_id"] for e in self.threads(self.bob)], [lonely, self.root])
        self.assertEqual(
            [e["event_id"] for e in self.threads(self.bob, "?include=participated")], [lonely]
        )
        page = self.api(self.bob).get(f"{V1}/rooms/{q(self.room)}/threads?limit=1").body
        rest = self.threads(self.bob, f"?limit=1&from={page['next_batch']}")
        self.assertEqual([e["event_id"] for e in rest], [self.root])
