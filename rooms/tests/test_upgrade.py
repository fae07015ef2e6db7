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


class CarriedIntoSuccessorTests(RoomTestCase):
    """Push rules, tags and m.direct of the old room follow its local members into the
    new one when they join it (rooms/actions/successor.py)."""

    def setUp(self) -> None:
        super().setUp()
        self.old = self.create_room(self.alice, preset="public_chat", room_version="10")
        got = self.api(self.bob).post(f"{V3}/join/{q(self.old)}", {})
        self.assertEqual(got.status_code, 200, got.body)
        for user in (self.alice, self.bob):
            self.mute(user, self.old)

    def mute(self, user: Any, room_id: str) -> None:
        got = self.api(user).put(
            f"{V3}/pushrules/global/room/{q(room_id)}", {"actions": ["dont_notify"]}
        )
        self.assertEqual(got.status_code, 200, got.body)

    def room_rules(self, user: Any) -> dict[str, Any]:
        rules = self.api(user).get(f"{V3}/pushrules/").body["global"]["room"]
        return {rule["rule_id"]: rule["actions"] for rule in rules}

    def upgrade(self) -> str:
        got = self.api(self.alice).post(f"{V3}/rooms/{q(self.old)}/upgrade", {"new_version": "11"})
        self.assertEqual(got.status_code, 200, got.body)
        return str(got.body["replacement_room"])

    def test_rules_tags_and_direct_follow_each_member_on_joining(self) -> None:
        api = self.api(self.alice)
        api.put(f"{V3}/user/{q(self.alice.user_id)}/rooms/{q(self.old)}/tags/m.favourite", {})
        api.put(
            f"{V3}/user/{q(self.alice.user_id)}/account_data/m.direct",
            {self.bob.user_id: [self.old]},
        )
        new = self.upgrade()
        self.assertEqual(self.room_rules(self.alice)[new], ["dont_notify"])
        self.assertNotIn(new, self.room_rules(self.bob))  # not in the new room yet
        tags = api.get(f"{V3}/user/{q(self.alice.user_id)}/rooms/{q(new)}/tags").body["tags"]
        self.assertIn("m.favourite", tags)
        direct = api.get(f"{V3}/user/{q(self.alice.user_id)}/account_data/m.direct").body
        self.assertEqual(direct, {self.bob.user_id: [self.old, new]})

        got = self.api(self.bob).post(f"{V3}/join/{q(new)}", {})
        self.assertEqual(got.status_code, 200, got.body)
        self.assertEqual(self.room_rules(self.bob)[new], ["dont_notify"])
        # /sync carries the new ruleset (Complement waits for it there).
        sync = self.sync(self.bob)["account_data"]["events"]
        rules = next(e for e in sync if e["type"] == "m.push_rules")["content"]["global"]
        self.assertIn(new, [rule["rule_id"] for rule in rules["room"]])

    def test_what_the_member_removes_later_stays_removed(self) -> None:
        new = self.upgrade()
        api = self.api(self.alice)
        self.assertEqual(api.delete(f"{V3}/pushrules/global/room/{q(new)}").status_code, 200)
        # A profile change is a join event too, but not a new join.
        got = api.put(f"{V3}/profile/{q(self.alice.user_id)}/displayname", {"displayname": "Al"})
        self.assertEqual(got.status_code, 200, got.body)
        self.assertNotIn(new, self.room_rules(self.alice))

    def test_a_manual_upgrade_through_create_room(self) -> None:
        new = self.create_room(self.alice, creation_content={"predecessor": {"room_id": self.old}})
        self.assertEqual(self.room_rules(self.alice)[new], ["dont_notify"])

    def test_an_override_rule_on_the_room_is_carried_with_its_condition(self) -> None:
        rule = {
            "actions": ["notify", {"set_tweak": "highlight"}],
            "conditions": [{"kind": "event_match", "key": "room_id", "pattern": self.old}],
        }
        got = self.api(self.alice).put(f"{V3}/pushrules/global/override/loud-{q(self.old)}", rule)
        self.assertEqual(got.status_code, 200, got.body)
        new = self.upgrade()
        overrides = self.api(self.alice).get(f"{V3}/pushrules/").body["global"]["override"]
        copied = next(r for r in overrides if r["rule_id"] == f"loud-{new}")
        self.assertEqual(copied["conditions"][0]["pattern"], new)
        self.assertIn(f"loud-{self.old}", [r["rule_id"] for r in overrides])
