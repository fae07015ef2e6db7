"""GET /pushrules/ and /pushrules/global/: the whole ruleset, defaults first-time."""

from __future__ import annotations

from matrixhs.testing import ApiClient, MatrixTestCase, assert_event_conforms

V3 = "/_matrix/client/v3"

OVERRIDE_IDS = [
    ".m.rule.master",
    ".m.rule.suppress_notices",
    ".m.rule.invite_for_me",
    ".m.rule.member_event",
    ".m.rule.is_user_mention",
    ".m.rule.is_room_mention",
    ".m.rule.tombstone",
    ".m.rule.reaction",
    ".m.rule.room.server_acl",
    ".m.rule.suppress_edits",
]
UNDERRIDE_IDS = [
    ".m.rule.call",
    ".m.rule.encrypted_room_one_to_one",
    ".m.rule.room_one_to_one",
    ".m.rule.message",
    ".m.rule.encrypted",
]


def ids(rules: list[dict]) -> list[str]:
    return [rule["rule_id"] for rule in rules]


class PushRulesTests(MatrixTestCase):
    def test_new_user_gets_the_v1_19_defaults_in_order(self) -> None:
        ruleset = self.api(self.alice).get(f"{V3}/pushrules/").body["global"]
        self.assertEqual(ids(ruleset["override"]), OVERRIDE_IDS)
        self.assertEqual(ids(ruleset["underride"]), UNDERRIDE_IDS)
        self.assertEqual((ruleset["content"], ruleset["room"], ruleset["sender"]), ([], [], []))
        self.assertTrue(all(r["default"] for r in ruleset["override"] + ruleset["underride"]))
        enabled = {r["rule_id"]: r["enabled"] for r in ruleset["override"]}
        self.assertEqual([k for k, v in enabled.items() if not v], [".m.rule.master"])

    def test_legacy_body_mention_rules_are_gone(self) -> None:
        ruleset = self.api(self.alice).get(f"{V3}/pushrules/").body["global"]
        every_id = [r["rule_id"] for rules in ruleset.values() for r in rules]
        for legacy in (
            ".m.rule.contains_display_name",
            ".m.rule.roomnotif",
            ".m.rule.contains_user_name",
        ):
            self.assertNotIn(legacy, every_id)

    def test_the_users_own_id_is_filled_in(self) -> None:
        override = self.api(self.bob).get(f"{V3}/pushrules/global/").body["override"]
        rules = {r["rule_id"]: r for r in override}
        self.assertEqual(
            rules[".m.rule.invite_for_me"]["conditions"][2],
            {"kind": "event_match", "key": "state_key", "pattern": "@bob:test.local"},
        )
        self.assertEqual(
            rules[".m.rule.is_user_mention"]["conditions"],
            [
                {
                    "kind": "event_property_contains",
                    "key": "content.m\\.mentions.user_ids",
                    "value": "@bob:test.local",
                }
            ],
        )
        self.assertEqual(
            rules[".m.rule.is_user_mention"]["actions"],
            ["notify", {"set_tweak": "sound", "value": "default"}, {"set_tweak": "highlight"}],
        )

    def test_global_is_the_inner_ruleset(self) -> None:
        everything = self.api(self.alice).get(f"{V3}/pushrules/").body
        self.assertEqual(
            self.api(self.alice).get(f"{V3}/pushrules/global/").body, everything["global"]
        )

    def test_paths_without_trailing_slash_and_r0(self) -> None:
        client = ApiClient(self.client, self.alice.test_token, check_spec=False)
        everything = client.get(f"{V3}/pushrules").body
        self.assertEqual(ids(everything["global"]["override"]), OVERRIDE_IDS)
        self.assertEqual(client.get(f"{V3}/pushrules/global").body, everything["global"])
        self.assertEqual(self.api(self.alice).get("/_matrix/client/r0/pushrules/").body, everything)

    def test_user_rules_come_before_defaults_but_after_master(self) -> None:
        self.api(self.alice).put(
            f"{V3}/pushrules/global/override/mine", {"actions": [], "conditions": []}
        )
        self.api(self.alice).put(f"{V3}/pushrules/global/underride/late", {"actions": []})
        ruleset = self.api(self.alice).get(f"{V3}/pushrules/").body["global"]
        self.assertEqual(
            ids(ruleset["override"])[:3], [".m.rule.master", "mine", ".m.rule.suppress_notices"]
        )
        self.assertEqual(ids(ruleset["underride"])[0], "late")

    def test_ruleset_is_a_valid_push_rules_event(self) -> None:
        content = self.api(self.alice).get(f"{V3}/pushrules/").body
        assert_event_conforms({"type": "m.push_rules", "content": content})

    def test_needs_a_token(self) -> None:
        self.assert_matrix_error(self.api().get(f"{V3}/pushrules/"), 401, "M_MISSING_TOKEN")
