"""Simplified sliding sync (MSC4186): lists, ordering, subscriptions, required_state,
increments, retries, filters and extensions."""

from __future__ import annotations

import json
from typing import Any

from accounts.actions.account_data import do_set_account_data
from matrixhs.errors import MatrixError
from rooms.tests.base import V3, RoomTestCase, q
from sync.consumers import LongPollRequest, SlidingSyncConsumer

EVERYTHING = {"ranges": [[0, 99]], "timeline_limit": 5, "required_state": [["*", "*"]]}


class SlidingSyncTestCase(RoomTestCase):
    def slide(self, user: Any, body: dict[str, Any], pos: str | None = None) -> dict[str, Any]:
        query = f"pos={q(pos)}" if pos else ""
        scope = {
            "method": "POST",
            "query_string": query.encode(),
            "client": ("127.0.0.1", 1),
            "headers": [(b"authorization", f"Bearer {user.test_token}".encode())],
        }
        endpoint = SlidingSyncConsumer()
        request = LongPollRequest(scope, json.dumps(body).encode())
        status, answer, _, _ = endpoint.compute(request, endpoint.prepare(request))
        self.assertEqual(status, 200)
        return answer  # type: ignore[no-any-return]


class ListTests(SlidingSyncTestCase):
    def test_rooms_come_most_recently_active_first(self) -> None:
        first = self.create_room(self.alice, name="First")
        second = self.create_room(self.alice, name="Second")
        self.send_ok(self.alice, first, "bump")
        body = self.slide(self.alice, {"lists": {"all": EVERYTHING}})
        self.assertEqual(body["lists"]["all"]["count"], 2)
        rooms = body["rooms"]
        self.assertEqual(set(rooms), {first, second})
        self.assertGreater(rooms[first]["bump_stamp"], rooms[second]["bump_stamp"])
        self.assertEqual(rooms[first]["name"], "First")
        self.assertIs(rooms[first]["initial"], True)
        self.assertEqual(rooms[first]["timeline"][-1]["content"]["body"], "bump")
        self.assertEqual(rooms[first]["lists"], ["all"])

    def test_ranges_pick_the_top_rooms(self) -> None:
        rooms = [self.create_room(self.alice, name=f"R{i}") for i in range(4)]
        body = self.slide(self.alice, {"lists": {"top": {**EVERYTHING, "ranges": [[0, 1]]}}})
        self.assertEqual(body["lists"]["top"]["count"], 4)
        self.assertEqual(set(body["rooms"]), {rooms[3], rooms[2]})

    def test_incremental_sends_only_changed_rooms_and_new_events(self) -> None:
        quiet = self.create_room(self.alice, name="Quiet")
        busy = self.create_room(self.alice, name="Busy")
        first = self.slide(self.alice, {"lists": {"all": EVERYTHING}})
        self.send_ok(self.alice, busy, "news")
        second = self.slide(self.alice, {"lists": {"all": EVERYTHING}}, first["pos"])
        self.assertEqual(list(second["rooms"]), [busy])
        room = second["rooms"][busy]
        self.assertNotIn("initial", room)
        self.assertEqual([e["content"]["body"] for e in room["timeline"]], ["news"])
        self.assertEqual(room["num_live"], 1)
        self.assertNotIn(quiet, second["rooms"])

    def test_nothing_new_keeps_the_position(self) -> None:
        self.create_room(self.alice)
        first = self.slide(self.alice, {"lists": {"all": EVERYTHING}})
        again = self.slide(self.alice, {"lists": {"all": EVERYTHING}}, first["pos"])
        self.assertEqual((again["rooms"], again["pos"]), ({}, first["pos"]))

    def test_a_retried_pos_is_answered_again(self) -> None:
        room = self.create_room(self.alice)
        first = self.slide(self.alice, {"lists": {"all": EVERYTHING}})
        self.send_ok(self.alice, room, "once")
        a = self.slide(self.alice, {"lists": {"all": EVERYTHING}}, first["pos"])
        b = self.slide(self.alice, {"lists": {"all": EVERYTHING}}, first["pos"])
        ids = [[e["event_id"] for e in r["rooms"][room]["timeline"]] for r in (a, b)]
        self.assertEqual(ids[0], ids[1])
        self.assertEqual(len(ids[0]), 1)

    def test_unknown_pos(self) -> None:
        with self.assertRaises(MatrixError) as caught:
            self.slide(self.alice, {"lists": {}}, "s1_0_0_0_0_0_0~999.1")
        self.assertEqual(
            (caught.exception.status, caught.exception.errcode), (400, "M_UNKNOWN_POS")
        )

    def test_filters(self) -> None:
        dm = self.create_room(self.alice, invite=["@bob:test.local"], is_direct=True)
        plain = self.create_room(
            self.alice,
            initial_state=[
                {"type": "m.room.encryption", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
            ],
        )
        do_set_account_data(self.alice, "m.direct", {"@bob:test.local": [dm]})
        body = self.slide(
            self.alice,
            {
                "lists": {
                    "dms": {**EVERYTHING, "filters": {"is_dm": True}},
                    "encrypted": {**EVERYTHING, "filters": {"is_encrypted": True}},
                }
            },
        )
        self.assertEqual(
            (body["lists"]["dms"]["count"], body["lists"]["encrypted"]["count"]), (1, 1)
        )
        self.assertEqual(body["rooms"][dm]["lists"], ["dms"])
        self.assertEqual(body["rooms"][plain]["lists"], ["encrypted"])

    def test_invites_come_with_stripped_state(self) -> None:
        room = self.create_room(self.alice, name="Join us")
        self.invite(self.alice, room, self.bob)
        body = self.slide(
            self.bob, {"lists": {"invites": {**EVERYTHING, "filters": {"is_invite": True}}}}
        )
        invite = body["rooms"][room]
        self.assertEqual(invite["membership"], "invite")
        self.assertIn("m.room.name", {e["type"] for e in invite["invite_state"]})
        self.assertNotIn("timeline", invite)


class LeftRoomTests(SlidingSyncTestCase):
    """A user who was kicked sees the room as it was when they left: its name, member
    counts and heroes then, and list filters judge it by that state."""

    def kick(self, room: str, user: Any) -> None:
        url = f"{V3}/rooms/{q(room)}/kick"
        response = self.api(self.alice).post(url, {"user_id": user.user_id})
        self.assertEqual(response.status_code, 200)

    def test_counts_and_heroes_are_those_at_the_leave(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        self.kick(room, self.bob)
        carol = self.make_user("carol")
        self.join(self.mallory, room)
        self.invite(self.alice, room, carol)
        seen = self.slide(self.bob, {"lists": {"all": EVERYTHING}})["rooms"][room]
        self.assertEqual(seen["membership"], "leave")
        self.assertEqual((seen["joined_count"], seen["invited_count"]), (1, 0))
        self.assertEqual([h["user_id"] for h in seen["heroes"]], [self.alice.user_id])

    def test_name_is_the_one_at_the_leave(self) -> None:
        room = self.create_room(self.alice, preset="public_chat", name="Then")
        self.join(self.bob, room)
        self.kick(room, self.bob)
        self.set_state(self.alice, room, "m.room.name", {"name": "Now"})
        self.set_state(self.alice, room, "m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"})
        seen = self.slide(self.bob, {"lists": {"all": EVERYTHING}})["rooms"][room]
        self.assertEqual(seen["name"], "Then")
        self.assertNotIn("Now", json.dumps(seen))
        for filters, count in (
            ({"room_name_like": "now"}, 0),
            ({"room_name_like": "then"}, 1),
            ({"is_encrypted": True}, 0),
        ):
            lists = {"l": {**EVERYTHING, "filters": filters}}
            self.assertEqual(self.slide(self.bob, {"lists": lists})["lists"]["l"]["count"], count)


class RequiredStateTests(SlidingSyncTestCase):
    def test_specific_state_and_lazy_members(self) -> None:
        room = self.create_room(self.alice, preset="public_chat", name="N", topic="T")
        self.join(self.bob, room)
        self.join(self.mallory, room)
        self.send_ok(self.bob, room, "from bob")
        config = {
            "ranges": [[0, 0]],
            "timeline_limit": 1,
            "required_state": [
                ["m.room.topic", ""],
                ["m.room.member", "$LAZY"],
                ["m.room.member", "$ME"],
            ],
        }
        room_out = self.slide(self.alice, {"lists": {"l": config}})["rooms"][room]
        keys = {(e["type"], e["state_key"]) for e in room_out["required_state"]}
        self.assertEqual(
            keys,
            {
                ("m.room.topic", ""),
                ("m.room.member", "@bob:test.local"),
                ("m.room.member", "@alice:test.local"),
            },
        )

    def test_subscription_with_everything(self) -> None:
        room = self.create_room(self.alice, name="Sub")
        body = self.slide(
            self.alice,
            {"room_subscriptions": {room: {"timeline_limit": 2, "required_state": [["*", "*"]]}}},
        )
        room_out = body["rooms"][room]
        self.assertEqual(len(room_out["timeline"]), 2)
        self.assertIn("m.room.create", {e["type"] for e in room_out["required_state"]})
        self.assertNotIn("lists", room_out)

    def test_state_change_goes_down_incrementally(self) -> None:
        room = self.create_room(self.alice, name="Old")
        config = {
            "lists": {
                "l": {
                    "ranges": [[0, 5]],
                    "timeline_limit": 0,
                    "required_state": [["m.room.name", ""]],
                }
            }
        }
        first = self.slide(self.alice, config)
        self.set_state(self.alice, room, "m.room.name", {"name": "New"})
        second = self.slide(self.alice, config, first["pos"])
        room_out = second["rooms"][room]
        self.assertEqual(room_out["name"], "New")
        self.assertEqual([e["content"] for e in room_out["required_state"]], [{"name": "New"}])

    def test_bad_bodies(self) -> None:
        for body in (
            {"lists": {"l": {"timeline_limit": "5"}}},
            {"lists": {"l": {"timeline_limit": 1, "required_state": [["a"]]}}},
            {"lists": {"l": {"timeline_limit": 1, "ranges": [[0]]}}},
            {"room_subscriptions": []},
        ):
            with self.assertRaises(MatrixError) as caught:
                self.slide(self.alice, body)
            self.assertEqual(caught.exception.errcode, "M_BAD_JSON", body)


class ExtensionTests(SlidingSyncTestCase):
    def test_to_device_and_e2ee(self) -> None:
        first = self.slide(
            self.bob, {"extensions": {"to_device": {"enabled": True}, "e2ee": {"enabled": True}}}
        )
        self.assertEqual(
            first["extensions"]["e2ee"]["device_one_time_keys_count"], {"signed_curve25519": 0}
        )
        url = f"{V3}/sendToDevice/org.example.ping/t1"
        self.api(self.alice).put(
            url, {"messages": {"@bob:test.local": {self.bob.test_device_id: {"hello": "bob"}}}}
        )
        second = self.slide(
            self.bob, {"extensions": {"to_device": {"enabled": True}}}, first["pos"]
        )
        events = second["extensions"]["to_device"]["events"]
        self.assertEqual(
            events,
            [
                {
                    "sender": "@alice:test.local",
                    "type": "org.example.ping",
                    "content": {"hello": "bob"},
                }
            ],
        )
        third = self.slide(
            self.bob,
            {
                "extensions": {
                    "to_device": {
                        "enabled": True,
                        "since": second["extensions"]["to_device"]["next_batch"],
                    }
                }
            },
            second["pos"],
        )
        self.assertEqual(third["extensions"]["to_device"]["events"], [])

    def test_account_data_receipts_typing(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        extensions = {
            "account_data": {"enabled": True},
            "receipts": {"enabled": True},
            "typing": {"enabled": True},
        }
        config = {"lists": {"l": EVERYTHING}, "extensions": extensions}
        first = self.slide(self.bob, config)
        event_id = self.send_ok(self.alice, room, "hey")
        do_set_account_data(self.bob, "org.example.setting", {"on": True})
        self.api(self.alice).post(f"{V3}/rooms/{q(room)}/receipt/m.read/{q(event_id)}", {})
        self.api(self.alice).put(
            f"{V3}/rooms/{q(room)}/typing/{q('@alice:test.local')}",
            {"typing": True, "timeout": 5000},
        )
        out = self.slide(self.bob, config, first["pos"])["extensions"]
        self.assertIn(
            {"type": "org.example.setting", "content": {"on": True}}, out["account_data"]["global"]
        )
        receipt = out["receipts"]["rooms"][room]
        self.assertIn("@alice:test.local", receipt["content"][event_id]["m.read"])
        self.assertEqual(out["typing"]["rooms"][room]["content"]["user_ids"], ["@alice:test.local"])
