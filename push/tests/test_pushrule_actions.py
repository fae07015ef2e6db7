"""GET/PUT /pushrules/global/{kind}/{ruleId}/actions."""

from __future__ import annotations

from matrixhs.testing import MatrixTestCase
from push.models import DefaultRuleSetting

RULES = "/_matrix/client/v3/pushrules/global"


class PushRuleActionsTests(MatrixTestCase):
    def test_change_a_default_rules_actions(self) -> None:
        url = f"{RULES}/underride/.m.rule.message/actions"
        self.assertEqual(self.api(self.alice).get(url).body, {"actions": ["notify"]})
        actions = ["notify", {"set_tweak": "sound", "value": "bing"}]
        self.assertEqual(self.api(self.alice).put(url, {"actions": actions}).status_code, 200)
        self.assertEqual(self.api(self.alice).get(url).body, {"actions": actions})
        rule = self.api(self.alice).get(f"{RULES}/underride/.m.rule.message").body
        self.assertEqual((rule["actions"], rule["default"], rule["enabled"]), (actions, True, True))

    def test_enabled_and_actions_settings_combine(self) -> None:
        base = f"{RULES}/underride/.m.rule.message"
        self.api(self.alice).put(f"{base}/enabled", {"enabled": False})
        self.api(self.alice).put(f"{base}/actions", {"actions": ["dont_notify"]})
        rule = self.api(self.alice).get(base).body
        self.assertEqual((rule["enabled"], rule["actions"]), (False, ["dont_notify"]))
        self.assertEqual(DefaultRuleSetting.objects.count(), 1)

    def test_change_a_user_rules_actions(self) -> None:
        self.api(self.alice).put(f"{RULES}/sender/{'@bob:test.local'}", {"actions": []})
        url = f"{RULES}/sender/@bob:test.local/actions"
        self.api(self.alice).put(url, {"actions": ["notify"]})
        self.assertEqual(self.api(self.alice).get(url).body, {"actions": ["notify"]})

    def test_unknown_rule(self) -> None:
        url = f"{RULES}/override/nope/actions"
        self.assert_matrix_error(self.api(self.alice).get(url), 404, "M_NOT_FOUND")
        self.assert_matrix_error(self.api(self.alice).put(url, {"actions": []}), 404, "M_NOT_FOUND")

    def test_bad_bodies(self) -> None:
        url = f"{RULES}/underride/.m.rule.message/actions"
        self.assert_matrix_error(self.api(self.alice).put(url, {}), 400, "M_MISSING_PARAM")
        self.assert_matrix_error(self.api(self.alice).put(url, {"actions": {}}), 400, "M_BAD_JSON")
        self.assert_matrix_error(
            self.api(self.alice).put(url, {"actions": ["boom"]}), 400, "M_INVALID_PARAM"
        )
        self.assertFalse(DefaultRuleSetting.objects.exists())
