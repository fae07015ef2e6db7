"""OpenID: a user's token for a third party, and the federation userinfo lookup that
third party makes with it."""

from __future__ import annotations

from typing import Any
from unittest import mock

from django.test import override_settings

from matrixhs.testing import MatrixTestCase, assert_conforms
from matrixhs.time import now_ms

USERINFO = "/_matrix/federation/v1/openid/userinfo"


@override_settings(MATRIXHS_FEDERATION_ENABLED=True)
class OpenIdTests(MatrixTestCase):
    def request_token(self) -> str:
        path = f"/_matrix/client/v3/user/{self.alice.user_id}/openid/request_token"
        got = self.api(self.alice).post(path, {})
        self.assertEqual(got.status_code, 200, got.body)
        self.assertEqual(got.body["token_type"], "Bearer")
        self.assertEqual(got.body["expires_in"], 3600)
        return str(got.body["access_token"])

    def userinfo(self, query: str = "") -> tuple[int, Any]:
        """The third party's request (no X-Matrix), checked against the federation spec."""
        path = f"{USERINFO}{query}"
        response = self.client.get(path)
        body = response.json()
        assert_conforms("GET", path, response.status_code, body, api="server-server")
        return response.status_code, body

    def test_the_third_party_learns_who_the_user_is(self) -> None:
        token = self.request_token()
        self.assertEqual(
            self.userinfo(f"?access_token={token}"), (200, {"sub": self.alice.user_id})
        )
        status, body = self.userinfo("?access_token=nope")
        self.assertEqual((status, body["errcode"]), (401, "M_UNKNOWN_TOKEN"))
        status, body = self.userinfo()
        self.assertEqual((status, body["errcode"]), (400, "M_MISSING_PARAM"))

    def test_tokens_expire(self) -> None:
        token = self.request_token()
        with mock.patch("accounts.actions.openid.now_ms", return_value=now_ms() + 3601 * 1000):
            status, body = self.userinfo(f"?access_token={token}")
        self.assertEqual((status, body["errcode"]), (401, "M_UNKNOWN_TOKEN"))

    def test_only_for_oneself(self) -> None:
        path = f"/_matrix/client/v3/user/{self.bob.user_id}/openid/request_token"
        self.assert_matrix_error(self.api(self.alice).post(path, {}), 403, "M_FORBIDDEN")
