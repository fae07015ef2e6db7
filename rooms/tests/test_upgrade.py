"""POST /rooms/{roomId}/upgrade: the new room, its predecessor link, the copied state,
the tombstone and restricted old room, moved aliases, bans and invites."""

from __future__ import annotations

from typing import Any

from rooms.tests.base import V3, RoomTestCase, q


class UpgradeTests(RoomTestCase):
    def state(self, user: Any, room_id: str, event_type: str, state_key: str = "") -> Any:
        return self.api(user).get(f"{V3}/rooms/{q(room_id)}/state/{event_type}/{state_key}")

    def upgrade(self, user: Any, room_id: str, version: str) -> Any:
        return self.api(user).post(f"{V3}/rooms/{q(room_id)}/upgrade", {"new_version": version})

    def join(self, user: Any, room_id: str) -> None:
        got = self.api(user).post(f"{V3}/join/{q(room_id)}", {})
        self.assertEqual(got.status_code, 200, got.body)

    def test_a_public_room_upgraded(self) -> None:
        old = self.create_room(
            self.alice,
            preset="public_chat",
            room_version="10",
            name="Hall",
            topic="All of us",
            room_alias_name="hall",
            visibility="public",
        )
        self.join(self.bob, old)
        banned = self.api(self.alice).post(
            f"{V3}/rooms/{q(old)}/ban", {"user_id": self.mallory.user_id}
        )
        self.assertEqual(banned.status_code, 200, banned.body)

        got = self.upgrade(self.alice, old, "11")
        self.assertEqual(got.status_code, 200, got.body)
        new = got.body["replacement_room"]

        create = self.state(self.alice, new, "m.room.create").body
        self.assertEqual(create["predecessor"], {"room_id": old})
        self.assertEqual(create["room_version"], "11")
        tombstone = self.state(self.alice, old, "m.room.tombstone").body
        self.assertEqual(tombstone["replacement_room"], new)
        self.assertEqual(self.state(self.alice, new, "m.room.name").body, {"name": "Hall"})
        self.assertEqual(self.state(self.alice, new, "m.room.topic").body["topic"], "All of us")
        self.assertEqual(
            self.state(self.alice, new, "m.room.join_rules").body["join_rule"], "public"
        )
        alias = f"#hall:{self.alice.user_id.split(':', 1)[1]}"
        resolved = self.api(self.alice).get(f"{V3}/directory/room/{q(alias)}")
        self.assertEqual(resolved.body["room_id"], new)
        self.assertEqual(self.state(self.alice, new, "m.room.canonical_alias").body["alias"], alias)
        listed = self.api(self.alice).get(f"{V3}/publicRooms").body["chunk"]
        self.assertEqual([r["room_id"] for r in listed], [new])
        old_levels = self.state(self.alice, old, "m.room.power_levels").body
        self.assertGreaterEqual(old_levels["events_default"], 50)
        self.assertGreaterEqual(old_levels["invite"], 50)
        self.assertEqual(
            self.state(self.alice, new, "m.room.member", self.mallory.user_id).body["membership"],
            "ban",
        )
        new_levels = self.state(self.alice, new, "m.room.power_levels").body
        self.assertEqual(new_levels["users"][self.alice.user_id], 100)
        # bob, not a moderator, can no longer speak in the old room, and may join the new.
        self.assertEqual(self.send(self.bob, old, "still here?").status_code, 403)
        self.join(self.bob, new)

    def test_a_private_room_invites_its_members_and_v12_lists_no_creator(self) -> None:
        old = self.create_room(self.alice, preset="private_chat", room_version="11")
        self.api(self.alice).post(f"{V3}/rooms/{q(old)}/invite", {"user_id": self.bob.user_id})
        self.join(self.bob, old)
        got = self.upgrade(self.alice, old, "12")
        self.assertEqual(got.status_code, 200, got.body)
        new = got.body["replacement_room"]
        member = self.state(self.alice, new, "m.room.member", self.bob.user_id).body
        self.assertEqual(member["membership"], "invite")
        levels = self.state(self.alice, new, "m.room.power_levels").body
        self.assertNotIn(self.alice.user_id, levels["users"])
        self.join(self.bob, new)

    def test_who_may_upgrade_and_to_what(self) -> None:
        room = self.create_room(self.alice, preset="public_chat", room_version="11")
        self.join(self.bob, room)
        self.assert_matrix_error(self.upgrade(self.bob, room, "12"), 403, "M_FORBIDDEN")
        self.assert_matrix_error(self.upgrade(self.mallory, room, "12"), 403, "M_FORBIDDEN")
        self.assert_matrix_error(
            self.upgrade(self.alice, room, "999"), 400, "M_UNSUPPORTED_ROOM_VERSION"
        )
        self.assert_matrix_error(
            self.upgrade(self.alice, "!nope:test.local", "12"), 403, "M_FORBIDDEN"
        )
        bad = self.api(self.alice).post(f"{V3}/rooms/{q(room)}/upgrade", {})
        self.assert_matrix_error(bad, 400, "M_MISSING_PARAM")
        # Nothing was half done.
        self.assertEqual(self.state(self.alice, room, "m.room.tombstone").status_code, 404)
