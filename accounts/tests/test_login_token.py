"""POST /v1/login/get_token and the m.login.token login flow: UIA every time, single use,
short-lived, and advertised in GET /login and /capabilities."""

from __future__ import annotations

from typing import Any
from unittest import mock

from django.test import override_settings

from accounts.actions.users import do_deactivate_user
from accounts.models import LoginToken
from matrixhs.testing import ApiClient, MatrixTestCase

GET_TOKEN = "/_matrix/client/v1/login/get_token"
LOGIN = "/_matrix/client/v3/login"


class LoginTokenTests(MatrixTestCase):
    def get_token(self, user: Any) -> dict[str, Any]:
        challenge = self.api(user).post(GET_TOKEN, {})
        self.assertEqual(challenge.status_code, 401)
        self.assertIn({"stages": ["m.login.password"]}, challenge.body["flows"])
        auth = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user.user_id},
            "password": self.password,
            "session": challenge.body["session"],
        }
        response = self.api(user).post(GET_TOKEN, {"auth": auth})
        self.assertEqual(response.status_code, 200, response.body)
        return response.body  # type: ignore[no-any-return]

    def login(self, token: str) -> Any:
        return self.api().post(LOGIN, {"type": "m.login.token", "token": token})

    def test_token_signs_in_a_new_device_once(self) -> None:
        body = self.get_token(self.alice)
        self.assertEqual(body["expires_in_ms"], 120_000)
        first = self.login(body["login_token"])
        self.assertEqual(first.status_code, 200, first.body)
        self.assertEqual(first.body["user_id"], self.alice.user_id)
        self.assertNotEqual(first.body["device_id"], self.alice.test_device_id)
        whoami = self.api(token=first.body["access_token"]).get("/_matrix/client/v3/account/whoami")
        self.assertEqual(whoami.body["user_id"], self.alice.user_id)
        self.assert_matrix_error(self.login(body["login_token"]), 403, "M_FORBIDDEN")

    def test_every_token_needs_the_password_again(self) -> None:
        self.get_token(self.alice)
        again = self.api(self.alice).post(GET_TOKEN, {})
        self.assertEqual(again.status_code, 401)
        self.assertEqual(again.body["completed"], [])

    def test_wrong_password_gives_no_token(self) -> None:
        challenge = self.api(self.alice).post(GET_TOKEN, {})
        auth = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": self.alice.user_id},
            "password": "wrong",
            "session": challenge.body["session"],
        }
        response = self.api(self.alice).post(GET_TOKEN, {"auth": auth})
        self.assert_matrix_error(response, 401, "M_FORBIDDEN")
        self.assertFalse(LoginToken.objects.exists())

    def test_expired_token_is_refused(self) -> None:
        token = self.get_token(self.alice)["login_token"]
        with mock.patch("accounts.actions.login_tokens.now_ms", return_value=10**15):
            self.assert_matrix_error(self.login(token), 403, "M_FORBIDDEN")

    def test_unknown_and_missing_tokens_are_refused(self) -> None:
        self.assert_matrix_error(self.login("not-a-token"), 403, "M_FORBIDDEN")
        response = self.api().post(LOGIN, {"type": "m.login.token"})
        self.assert_matrix_error(response, 400, "M_MISSING_PARAM")
        response = self.api().post(LOGIN, {"type": "m.login.token", "token": 5})
        self.assert_matrix_error(response, 400, "M_BAD_JSON")

    def test_token_of_a_deactivated_user_is_refused(self) -> None:
        token = self.get_token(self.bob)["login_token"]
        do_deactivate_user(self.bob)
        self.assertIn(self.login(token).status_code, (401, 403))

    def test_needs_an_access_token(self) -> None:
        # (The spec's 401 schema here is the UIA one; a missing token is the general 401.)
        anonymous = ApiClient(self.client, None, check_spec=False)
        self.assert_matrix_error(anonymous.post(GET_TOKEN, {}), 401, "M_MISSING_TOKEN")

    def test_login_flows_and_capability_advertise_it(self) -> None:
        flows = self.api().get(LOGIN).body["flows"]
        self.assertIn({"type": "m.login.token", "get_login_token": True}, flows)
        capabilities = self.api(self.alice).get("/_matrix/client/v3/capabilities").body
        self.assertEqual(capabilities["capabilities"]["m.get_login_token"], {"enabled": True})

    @override_settings(MATRIXHS_LOGIN_TOKEN_ENABLED=False)
    def test_disabled_by_setting(self) -> None:
        flows = self.api().get(LOGIN).body["flows"]
        self.assertNotIn("m.login.token", [f["type"] for f in flows])
        capabilities = self.api(self.alice).get("/_matrix/client/v3/capabilities").body
        self.assertEqual(capabilities["capabilities"]["m.get_login_token"], {"enabled": False})
        self.assert_matrix_error(self.api(self.alice).post(GET_TOKEN, {}), 404, "M_UNRECOGNIZED")
        response = self.api().post(LOGIN, {"type": "m.login.token", "token": "x"})
        self.assert_matrix_error(response, 400, "M_UNKNOWN")
