"""GET/PUT /pushrules/global/{kind}/{ruleId}/enabled."""

from __future__ import annotations

from accounts.models import AccountData
from matrixhs.testing import MatrixTestCase
from push.models import DefaultRuleSetting

RULES = "/_matrix/client/v3/pushrules/global"


class PushRuleEnabledTests(MatrixTestCase):
    def test_enable_the_master_rule(self) -> None:
        url = f"{RULES}/override/.m.rule.master/enabled"
        self.assertEqual(self.api(self.alice).get(url).body, {"enabled": False})
        self.assertEqual(self.api(self.alice).put(url, {"enabled": True}).status_code, 200)
        self.assertEqual(self.api(self.alice).get(url).body, {"enabled": True})
        master = self.api(self.alice).get(f"{RULES}/override/.m.rule.master").body
        self.assertEqual((master["enabled"], master["default"]), (True, True))
        pushed = AccountData.objects.get(user=self.alice, type="m.push_rules").content
        self.assertTrue(pushed["global"]["override"][0]["enabled"])
        self.assertEqual(self.api(self.bob).get(url).body, {"enabled": False})

    def test_disable_a_user_rule(self) -> None:
        self.api(self.alice).put(f"{RULES}/content/cake", {"pattern": "cake", "actions": []})
        url = f"{RULES}/content/cake/enabled"
        self.assertEqual(self.api(self.alice).get(url).body, {"enabled": True})
        self.api(self.alice).put(url, {"enabled": False})
        self.assertEqual(self.api(self.alice).get(url).body, {"enabled": False})

    def test_unknown_rules(self) -> None:
        for url in (f"{RULES}/content/nope/enabled", f"{RULES}/content/.m.rule.master/enabled"):
            self.assert_matrix_error(self.api(self.alice).get(url), 404, "M_NOT_FOUND")
            self.assert_matrix_error(
                self.api(self.alice).put(url, {"enabled": True}), 404, "M_NOT_FOUND"
            )
        self.assertFalse(DefaultRuleSetting.objects.exists())

    def test_bad_bodies(self) -> None:
        url = f"{RULES}/override/.m.rule.master/enabled"
        self.assert_matrix_error(self.api(self.alice).put(url, {}), 400, "M_MISSING_PARAM")
        self.assert_matrix_error(
            self.api(self.alice).put(url, {"enabled": "true"}), 400, "M_BAD_JSON"
        )
        self.assert_matrix_error(
            self.api(self.alice).put(f"{RULES}/nope/x/enabled", {"enabled": True}),
            400,
            "M_INVALID_PARAM",
        )
        self.assertFalse(DefaultRuleSetting.objects.exists())
