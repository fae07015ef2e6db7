"""GET/PUT/DELETE /pushrules/global/{kind}/{ruleId}."""

from __future__ import annotations

from urllib.parse import quote

from accounts.models import AccountData
from matrixhs.streams import Stream, current_position
from matrixhs.testing import MatrixTestCase
from push.models import PushRule
from push.rules import strip_historical_actions

ALL = "/_matrix/client/v3/pushrules/"
RULES = f"{ALL}global"


def q(value: str) -> str:
    return quote(value, safe="")


class PushRuleTests(MatrixTestCase):
    def put(self, kind: str, rule_id: str, body: dict, query: str = ""):
        return self.api(self.alice).put(f"{RULES}/{kind}/{q(rule_id)}{query}", body)

    def order(self, kind: str) -> list[str]:
        rules = self.api(self.alice).get(f"{RULES}/").body[kind]
        return [r["rule_id"] for r in rules if not r["default"]]

    def test_content_rule_round_trip(self) -> None:
        response = self.put("content", "cake", {"pattern": "cake*lie", "actions": ["notify"]})
        self.assertEqual((response.status_code, response.body), (200, {}))
        rule = self.api(self.alice).get(f"{RULES}/content/cake").body
        self.assertEqual(
            rule,
            {
                "rule_id": "cake",
                "default": False,
                "enabled": True,
                "actions": ["notify"],
                "pattern": "cake*lie",
            },
        )

    def test_override_rule_keeps_its_conditions(self) -> None:
        conditions = [
            {"kind": "event_match", "key": "content.body", "pattern": "beer"},
            {"kind": "room_member_count", "is": "<=10"},
            {"kind": "org.example.future"},
        ]
        self.put(
            "override",
            "beer",
            {
                "conditions": conditions,
                "actions": ["notify", {"set_tweak": "sound", "value": "beeroclock.wav"}],
            },
        )
        rule = self.api(self.alice).get(f"{RULES}/override/beer").body
        self.assertEqual(rule["conditions"], conditions)

    def test_room_and_sender_rules_take_ids_as_rule_ids(self) -> None:
        self.assertEqual(self.put("room", "!abc:test.local", {"actions": []}).status_code, 200)
        self.assertEqual(self.put("sender", "@spam:example.org", {"actions": []}).status_code, 200)
        rule = self.api(self.alice).get(f"{RULES}/room/{q('!abc:test.local')}").body
        self.assertEqual(
            rule, {"rule_id": "!abc:test.local", "default": False, "enabled": True, "actions": []}
        )
        self.assert_matrix_error(
            self.put("room", "not-a-room", {"actions": []}), 400, "M_INVALID_PARAM"
        )
        self.assert_matrix_error(
            self.put("sender", "spam", {"actions": []}), 400, "M_INVALID_PARAM"
        )

    def test_historical_actions_are_kept_as_written(self) -> None:
        self.put("underride", "quiet", {"actions": ["dont_notify", "coalesce"]})
        rule = self.api(self.alice).get(f"{RULES}/underride/quiet").body
        self.assertEqual(rule["actions"], ["dont_notify", "coalesce"])
        self.assertEqual(strip_historical_actions(rule["actions"]), [])

    def test_new_rules_go_first_unless_placed(self) -> None:
        for name in ("a", "b"):
            self.put("content", name, {"pattern": name, "actions": []})
        self.assertEqual(self.order("content"), ["b", "a"])
        self.put("content", "c", {"pattern": "c", "actions": []}, "?after=b")
        self.assertEqual(self.order("content"), ["b", "c", "a"])
        self.put("content", "d", {"pattern": "d", "actions": []}, "?before=a&after=b")
        self.assertEqual(self.order("content"), ["b", "c", "d", "a"])

    def test_update_keeps_place_and_enabled_flag_unless_moved(self) -> None:
        for name in ("a", "b", "c"):
            self.put("content", name, {"pattern": name, "actions": []})
        self.api(self.alice).put(f"{RULES}/content/b/enabled", {"enabled": False})
        self.put("content", "b", {"pattern": "bee", "actions": ["notify"]})
        self.assertEqual(self.order("content"), ["c", "b", "a"])
        rule = self.api(self.alice).get(f"{RULES}/content/b").body
        self.assertEqual((rule["pattern"], rule["enabled"]), ("bee", False))
        self.put("content", "b", {"pattern": "bee", "actions": []}, "?after=a")
        self.assertEqual(self.order("content"), ["c", "a", "b"])

    def test_each_change_is_copied_to_account_data(self) -> None:
        before = current_position(Stream.ACCOUNT_DATA)
        self.put("content", "cake", {"pattern": "cake", "actions": ["notify"]})
        row = AccountData.objects.get(user=self.alice, type="m.push_rules")
        self.assertGreater(row.stream_id, before)
        self.assertEqual(row.content, self.api(self.alice).get(ALL).body)
        self.api(self.alice).delete(f"{RULES}/content/cake")
        row.refresh_from_db()
        self.assertEqual(row.content["global"]["content"], [])

    def test_delete(self) -> None:
        self.put("content", "cake", {"pattern": "cake", "actions": []})
        self.assertEqual(self.api(self.alice).delete(f"{RULES}/content/cake").status_code, 200)
        self.assert_matrix_error(
            self.api(self.alice).get(f"{RULES}/content/cake"), 404, "M_NOT_FOUND"
        )
        self.assert_matrix_error(
            self.api(self.alice).delete(f"{RULES}/content/cake"), 404, "M_NOT_FOUND"
        )

    def test_server_default_rules_cannot_be_added_or_deleted(self) -> None:
        response = self.put("override", ".m.rule.master", {"actions": []})
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")
        response = self.api(self.alice).delete(f"{RULES}/override/.m.rule.master")
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")
        self.assertFalse(PushRule.objects.exists())

    def test_get_default_rule_and_unknown_rules(self) -> None:
        rule = self.api(self.alice).get(f"{RULES}/underride/.m.rule.message").body
        self.assertEqual(rule["actions"], ["notify"])
        self.assert_matrix_error(
            self.api(self.alice).get(f"{RULES}/override/.m.rule.message"), 404, "M_NOT_FOUND"
        )
        self.assert_matrix_error(
            self.api(self.alice).get(f"{RULES}/content/nope"), 404, "M_NOT_FOUND"
        )

    def test_rules_are_per_user(self) -> None:
        self.put("content", "cake", {"pattern": "cake", "actions": []})
        self.assert_matrix_error(
            self.api(self.bob).get(f"{RULES}/content/cake"), 404, "M_NOT_FOUND"
        )
        self.assert_matrix_error(
            self.api(self.bob).delete(f"{RULES}/content/cake"), 404, "M_NOT_FOUND"
        )

    def test_bad_rule_ids(self) -> None:
        for rule_id in ("a/b", "a\\b"):
            self.assert_matrix_error(
                self.put("content", rule_id, {"pattern": "x", "actions": []}),
                400,
                "M_INVALID_PARAM",
            )
        self.assert_matrix_error(
            self.put("content", "x" * 256, {"pattern": "x", "actions": []}), 400, "M_INVALID_PARAM"
        )
        self.assertFalse(PushRule.objects.exists())

    def test_bad_kind(self) -> None:
        self.assert_matrix_error(self.put("global", "x", {"actions": []}), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(
            self.api(self.alice).put(f"{RULES}/nope/x/enabled", {"enabled": False}),
            400,
            "M_INVALID_PARAM",
        )

    def test_rules_of_unknown_kinds_do_not_exist(self) -> None:
        # How clients probe for rules of an MSC (MSC4306's postcontent thread rules).
        rule = q(".io.element.msc4306.rule.subscribed_thread")
        for path in (f"postcontent/{rule}", f"postcontent/{rule}/enabled", "nope/x/actions"):
            self.assert_matrix_error(
                self.api(self.alice).get(f"{RULES}/{path}"), 404, "M_NOT_FOUND"
            )

    def test_bad_bodies(self) -> None:
        self.assert_matrix_error(self.put("content", "x", {"pattern": "x"}), 400, "M_MISSING_PARAM")
        self.assert_matrix_error(self.put("content", "x", {"actions": []}), 400, "M_MISSING_PARAM")
        self.assert_matrix_error(
            self.put("content", "x", {"pattern": 5, "actions": []}), 400, "M_BAD_JSON"
        )
        self.assert_matrix_error(
            self.put("content", "x", {"pattern": "", "actions": []}), 400, "M_INVALID_PARAM"
        )
        self.assert_matrix_error(
            self.put("content", "x", {"pattern": "x", "actions": "notify"}), 400, "M_BAD_JSON"
        )
        self.assert_matrix_error(
            self.put("content", "x", {"pattern": "x", "actions": ["dance"]}), 400, "M_INVALID_PARAM"
        )
        self.assert_matrix_error(
            self.put("content", "x", {"pattern": "x", "actions": [{}]}), 400, "M_INVALID_PARAM"
        )
        self.assert_matrix_error(
            self.put("content", "x", {"pattern": "x", "actions": [3]}), 400, "M_BAD_JSON"
        )
        response = self.api(self.alice).put(f"{RULES}/content/x", raw=b"{nope")
        self.assert_matrix_error(response, 400, "M_NOT_JSON")
        self.assertFalse(PushRule.objects.exists())

    def test_bad_conditions(self) -> None:
        cases = [
            ({"conditions": {}}, "M_BAD_JSON"),
            ({"conditions": [{"key": "type"}]}, "M_BAD_JSON"),
            ({"conditions": [{"kind": "event_match", "key": "type"}]}, "M_BAD_JSON"),
            (
                {"conditions": [{"kind": "event_property_is", "key": "x", "value": [1]}]},
                "M_BAD_JSON",
            ),
            (
                {"conditions": [{"kind": "event_property_is", "key": "x", "value": 2**53}]},
                "M_BAD_JSON",
            ),
            ({"conditions": [{"kind": "room_member_count", "is": "about 3"}]}, "M_INVALID_PARAM"),
        ]
        for body, errcode in cases:
            with self.subTest(body=body):
                self.assert_matrix_error(
                    self.put("override", "x", {**body, "actions": []}), 400, errcode
                )
        self.assertFalse(PushRule.objects.exists())

    def test_before_and_after_must_name_a_user_rule_of_the_kind(self) -> None:
        self.put("content", "a", {"pattern": "a", "actions": []})
        body = {"pattern": "b", "actions": []}
        self.assert_matrix_error(self.put("content", "b", body, "?before=zzz"), 400, "M_UNKNOWN")
        self.assert_matrix_error(
            self.put("content", "b", body, "?after=.m.rule.master"), 400, "M_INVALID_PARAM"
        )
        self.assert_matrix_error(self.put("content", "a", body, "?after=a"), 400, "M_INVALID_PARAM")
        self.assertEqual(self.order("content"), ["a"])
