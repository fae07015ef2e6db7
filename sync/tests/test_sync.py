"""GET /sync (classic): sections, increments, gaps, leaves, filters and bad input."""

from __future__ import annotations

import json
from typing import Any

from accounts.actions.account_data import do_set_account_data
from matrixhs.tokens import SyncToken
from rooms.tests.base import V3, RoomTestCase, q


def timeline(body: dict[str, Any], room_id: str, section: str = "join") -> list[dict[str, Any]]:
    return body["rooms"][section][room_id]["timeline"]["events"]


def bodies(events: list[dict[str, Any]]) -> list[str]:
    return [e["content"].get("body") for e in events if e["type"] == "m.room.message"]


class InitialSyncTests(RoomTestCase):
    def test_joined_room_with_timeline_state_and_summary(self) -> None:
        room = self.create_room(self.alice, preset="public_chat", name="Garden")
        self.join(self.bob, room)
        self.send_ok(self.alice, room, "hello")
        body = self.sync(self.bob)
        joined = body["rooms"]["join"][room]
        self.assertEqual(bodies(joined["timeline"]["events"]), ["hello"])
        self.assertIs(joined["timeline"]["limited"], False)  # 9 events in all
        self.assertEqual(joined["timeline"]["events"][0]["type"], "m.room.create")
        self.assertEqual(joined["state"]["events"], [])  # all of it is in the timeline
        self.assertEqual(joined["summary"]["m.joined_member_count"], 2)
        self.assertEqual(joined["summary"]["m.heroes"], ["@alice:test.local"])
        SyncToken.parse(body["next_batch"])

    def test_state_and_timeline_do_not_overlap(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        body = self.sync(self.alice, filter=json.dumps({"room": {"timeline": {"limit": 3}}}))
        joined = body["rooms"]["join"][room]
        timeline_ids = {e["event_id"] for e in joined["timeline"]["events"]}
        state_ids = {e["event_id"] for e in joined["state"]["events"]}
        self.assertEqual(len(timeline_ids), 3)
        self.assertFalse(timeline_ids & state_ids)
        keys = {(e["type"], e["state_key"]) for e in joined["state"]["events"]}
        keys |= {(e["type"], e["state_key"]) for e in joined["timeline"]["events"]}
        self.assertIn(("m.room.power_levels", ""), keys)

    def test_invite_has_stripped_state(self) -> None:
        room = self.create_room(self.alice, name="Secret club")
        self.invite(self.alice, room, self.bob)
        invite = self.sync(self.bob)["rooms"]["invite"][room]["invite_state"]["events"]
        types = {e["type"] for e in invite}
        self.assertIn("m.room.name", types)
        own = [e for e in invite if e["type"] == "m.room.member"]
        self.assertEqual(own[0]["state_key"], "@bob:test.local")
        self.assertNotIn("event_id", own[0])

    def test_prev_batch_works_with_messages(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        for i in range(5):
            self.send_ok(self.alice, room, f"m{i}")
        joined = self.sync(self.alice, filter=json.dumps({"room": {"timeline": {"limit": 2}}}))
        prev = joined["rooms"]["join"][room]["timeline"]["prev_batch"]
        older = self.messages(self.alice, room, f"dir=b&limit=3&from={prev}").body["chunk"]
        self.assertEqual(bodies(older), ["m2", "m1", "m0"])

    def test_global_account_data(self) -> None:
        do_set_account_data(self.alice, "im.vector.web.settings", {"theme": "dark"})
        events = self.sync(self.alice)["account_data"]["events"]
        self.assertIn({"type": "im.vector.web.settings", "content": {"theme": "dark"}}, events)


class IncrementalSyncTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(self.alice, preset="public_chat", name="Start")
        self.join(self.bob, self.room)
        self.token = self.sync(self.bob)["next_batch"]

    def test_new_message_only(self) -> None:
        self.send_ok(self.alice, self.room, "news")
        body = self.sync(self.bob, since=self.token)
        joined = body["rooms"]["join"][self.room]
        self.assertEqual(bodies(joined["timeline"]["events"]), ["news"])
        self.assertIs(joined["timeline"]["limited"], False)
        self.assertEqual(joined["state"]["events"], [])
        again = self.sync(self.bob, since=body["next_batch"])
        self.assertEqual(again["rooms"], {})

    def test_left_room_state_goes_through_the_state_filter(self) -> None:
        self.set_state(self.alice, self.room, "m.room.topic", {"topic": "Before"})
        self.send_ok(self.alice, self.room, "before")
        self.leave(self.bob, self.room)
        room_filter = {
            "timeline": {"types": ["m.room.message"]},
            "state": {"types": ["m.room.topic"]},
        }
        room_filter["include_leave"] = True
        body = self.sync(self.bob, filter=json.dumps({"room": room_filter}))
        left = body["rooms"]["leave"][self.room]
        self.assertEqual(bodies(left["timeline"]["events"]), ["before"])
        self.assertEqual({e["type"] for e in left["state"]["events"]}, {"m.room.topic"})

    def test_nothing_new_is_empty(self) -> None:
        self.assertEqual(self.sync(self.bob, since=self.token)["rooms"], {})

    def test_gappy_sync_returns_the_state_change_in_the_gap(self) -> None:
        self.set_state(self.alice, self.room, "m.room.name", {"name": "Renamed"})
        for i in range(12):
            self.send_ok(self.alice, self.room, f"m{i}")
        joined = self.sync(self.bob, since=self.token)["rooms"]["join"][self.room]
        self.assertIs(joined["timeline"]["limited"], True)
        self.assertEqual(len(joined["timeline"]["events"]), 10)
        names = [e for e in joined["state"]["events"] if e["type"] == "m.room.name"]
        self.assertEqual(names[0]["content"], {"name": "Renamed"})
        self.assertNotIn("m.room.create", {e["type"] for e in joined["state"]["events"]})

    def test_kick_moves_the_room_to_leave_and_stops_events(self) -> None:
        self.send_ok(self.alice, self.room, "before")
        self.api(self.alice).post(f"{V3}/rooms/{q(self.room)}/kick", {"user_id": "@bob:test.local"})
        self.send_ok(self.alice, self.room, "after kick")
        body = self.sync(self.bob, since=self.token)
        self.assertNotIn(self.room, body["rooms"].get("join", {}))
        left = timeline(body, self.room, "leave")
        self.assertEqual(left[-1]["content"]["membership"], "leave")
        self.assertNotIn("after kick", bodies(left))
        later = self.sync(self.bob, since=body["next_batch"])
        self.assertEqual(later["rooms"], {})

    def test_newly_joined_room_comes_with_full_state(self) -> None:
        other = self.create_room(self.alice, preset="public_chat", name="Other")
        self.join(self.bob, other)
        joined = self.sync(self.bob, since=self.token)["rooms"]["join"][other]
        self.assertIn(
            "m.room.create",
            {e["type"] for e in joined["state"]["events"]}
            | {e["type"] for e in joined["timeline"]["events"]},
        )

    def test_invite_and_its_retraction(self) -> None:
        private = self.create_room(self.alice)
        self.invite(self.alice, private, self.bob)
        body = self.sync(self.bob, since=self.token)
        self.assertIn(private, body["rooms"]["invite"])
        self.leave(self.bob, private)
        rejected = self.sync(self.bob, since=body["next_batch"])
        self.assertIn(private, rejected["rooms"]["leave"])

    def test_invites_from_ignored_users_are_not_sent(self) -> None:
        do_set_account_data(
            self.bob, "m.ignored_user_list", {"ignored_users": {"@mallory:test.local": {}}}
        )
        token = self.sync(self.bob, since=self.token)["next_batch"]
        from_mallory = self.create_room(self.mallory)
        self.invite(self.mallory, from_mallory, self.bob)
        from_alice = self.create_room(self.alice)
        self.invite(self.alice, from_alice, self.bob)
        invites = self.sync(self.bob, since=token)["rooms"]["invite"]
        self.assertEqual(set(invites), {from_alice})
        self.assertEqual(set(self.sync(self.bob)["rooms"]["invite"]), {from_alice})

    def test_leave_of_a_forgotten_room_still_comes_in_the_incremental_sync(self) -> None:
        self.leave(self.bob, self.room)
        self.api(self.bob).post(f"{V3}/rooms/{q(self.room)}/forget", {})
        self.send_ok(self.alice, self.room, "after bob forgot")
        body = self.sync(self.bob, since=self.token)
        self.assertIn(self.room, body["rooms"]["leave"])
        self.assertNotIn(self.room, body["rooms"].get("join", {}))
        later = self.sync(self.bob, since=body["next_batch"])
        self.assertEqual(later["rooms"], {})
        include_leave = json.dumps({"room": {"include_leave": True}})
        initial = self.sync(self.bob, filter=include_leave)
        self.assertNotIn(self.room, initial["rooms"].get("leave", {}))

    def test_incremental_leave_has_no_state_beside_a_whole_timeline(self) -> None:
        self.leave(self.bob, self.room)
        left = self.sync(self.bob, since=self.token)["rooms"]["leave"][self.room]
        self.assertEqual([e["type"] for e in left["timeline"]["events"]], ["m.room.member"])
        self.assertFalse(left["timeline"]["limited"])
        self.assertEqual(left["state"]["events"], [])

    def test_typing_and_receipts_are_ephemeral(self) -> None:
        event_id = self.send_ok(self.alice, self.room, "read me")
        token = self.sync(self.bob, since=self.token)["next_batch"]
        self.api(self.alice).put(
            f"{V3}/rooms/{q(self.room)}/typing/{q('@alice:test.local')}",
            {"typing": True, "timeout": 10000},
        )
        self.api(self.alice).post(f"{V3}/rooms/{q(self.room)}/receipt/m.read/{q(event_id)}", {})
        ephemeral = self.sync(self.bob, since=token)["rooms"]["join"][self.room]["ephemeral"]
        by_type = {e["type"]: e["content"] for e in ephemeral["events"]}
        self.assertEqual(by_type["m.typing"], {"user_ids": ["@alice:test.local"]})
        self.assertIn("@alice:test.local", by_type["m.receipt"][event_id]["m.read"])

    def test_unthreaded_receipt_wins_over_a_threaded_one_on_the_same_event(self) -> None:
        root = self.send_ok(self.alice, self.room, "root")
        reply = (
            self.api(self.alice)
            .put(
                f"{V3}/rooms/{q(self.room)}/send/m.room.message/reply",
                {
                    "msgtype": "m.text",
                    "body": "in thread",
                    "m.relates_to": {"rel_type": "m.thread", "event_id": root},
                },
            )
            .body["event_id"]
        )
        receipt = f"{V3}/rooms/{q(self.room)}/receipt/m.read/{q(reply)}"
        self.api(self.bob).post(receipt, {})
        token = self.sync(self.alice, since=self.token)["next_batch"]
        self.api(self.bob).post(receipt, {"thread_id": root})
        for since in (None, token):  # initial, and incremental with only the threaded change
            body = self.sync(self.alice, since=since)
            events = body["rooms"]["join"][self.room]["ephemeral"]["events"]
            content = next(e["content"] for e in events if e["type"] == "m.receipt")
            self.assertNotIn("thread_id", content[reply]["m.read"]["@bob:test.local"])

    def test_private_receipts_stay_private(self) -> None:
        event_id = self.send_ok(self.alice, self.room, "x")
        token = self.sync(self.bob, since=self.token)["next_batch"]
        self.api(self.alice).post(
            f"{V3}/rooms/{q(self.room)}/receipt/m.read.private/{q(event_id)}", {}
        )
        body = self.sync(self.bob, since=token)
        self.assertNotIn(self.room, body["rooms"].get("join", {}))
        own = self.sync(self.alice)["rooms"]["join"][self.room]["ephemeral"]["events"]
        self.assertIn("m.read.private", json.dumps(own))

    def test_room_account_data(self) -> None:
        do_set_account_data(self.bob, "m.tag", {"tags": {"u.work": {}}}, self.room)
        joined = self.sync(self.bob, since=self.token)["rooms"]["join"][self.room]
        self.assertEqual(
            joined["account_data"]["events"],
            [{"type": "m.tag", "content": {"tags": {"u.work": {}}}}],
        )

    def test_full_state_resends_state(self) -> None:
        self.send_ok(self.alice, self.room, "x")
        joined = self.sync(self.bob, since=self.token, full_state="true")["rooms"]["join"][
            self.room
        ]
        self.assertIn("m.room.create", {e["type"] for e in joined["state"]["events"]})
        self.assertEqual(bodies(joined["timeline"]["events"]), ["x"])  # still since the token


class FilterTests(RoomTestCase):
    def test_types_and_lazy_loading(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        self.join(self.mallory, room)
        self.send_ok(self.alice, room, "one")
        definition = {
            "room": {
                "timeline": {"types": ["m.room.message"], "limit": 5},
                "state": {"lazy_load_members": True},
            }
        }
        joined = self.sync(self.bob, filter=json.dumps(definition))["rooms"]["join"][room]
        self.assertEqual({e["type"] for e in joined["timeline"]["events"]}, {"m.room.message"})
        members = {
            e["state_key"] for e in joined["state"]["events"] if e["type"] == "m.room.member"
        }
        self.assertEqual(members, {"@alice:test.local", "@bob:test.local"})

    def test_room_filter(self) -> None:
        first = self.create_room(self.alice)
        second = self.create_room(self.alice)
        body = self.sync(self.alice, filter=json.dumps({"room": {"rooms": [second]}}))
        self.assertEqual(list(body["rooms"]["join"]), [second])
        self.assertNotIn(first, body["rooms"]["join"])


class BadSyncRequestTests(RoomTestCase):
    def assert_error(self, status: int, errcode: str, **params: str) -> None:
        from matrixhs.errors import MatrixError

        with self.assertRaises(MatrixError) as caught:
            self.sync(self.alice, **params)
        self.assertEqual((caught.exception.status, caught.exception.errcode), (status, errcode))

    def test_bad_parameters(self) -> None:
        self.assert_error(400, "M_INVALID_PARAM", since="garbage")
        self.assert_error(400, "M_INVALID_PARAM", full_state="yes")
        self.assert_error(400, "M_NOT_JSON", filter="{nope")
        self.assert_error(400, "M_BAD_JSON", filter='{"room": {"timeline": {"limit": "x"}}}')
