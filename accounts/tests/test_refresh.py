from __future__ import annotations

from accounts.models import AccessToken
from matrixhs.testing import MatrixTestCase
from matrixhs.time import now_ms

LOGIN = "/_matrix/client/v3/login"
REFRESH = "/_matrix/client/v3/refresh"
WHOAMI = "/_matrix/client/v3/account/whoami"


class RefreshTests(MatrixTestCase):
    def login_with_refresh(self) -> dict:
        body = {
            "type": "m.login.password",
            "user": "alice",
            "password": self.password,
            "refresh_token": True,
        }
        response = self.api().post(LOGIN, body)
        self.assertIn("refresh_token", response.body)
        return response.body

    def test_refresh_gives_a_working_new_pair(self) -> None:
        first = self.login_with_refresh()
        second = self.api().post(REFRESH, {"refresh_token": first["refresh_token"]}).body
        self.assertNotEqual(second["access_token"], first["access_token"])
        self.assertEqual(self.api(token=second["access_token"]).get(WHOAMI).status_code, 200)

    def test_old_pair_retires_when_new_token_is_used(self) -> None:
        first = self.login_with_refresh()
        second = self.api().post(REFRESH, {"refresh_token": first["refresh_token"]}).body
        self.api(token=second["access_token"]).get(WHOAMI)
        self.assert_matrix_error(
            self.api(token=first["access_token"]).get(WHOAMI), 401, "M_UNKNOWN_TOKEN"
        )
        response = self.api().post(REFRESH, {"refresh_token": first["refresh_token"]})
        self.assert_matrix_error(response, 401, "M_UNKNOWN_TOKEN")

    def test_old_refresh_token_works_until_new_pair_is_used(self) -> None:
        first = self.login_with_refresh()
        self.api().post(REFRESH, {"refresh_token": first["refresh_token"]})
        again = self.api().post(REFRESH, {"refresh_token": first["refresh_token"]})
        self.assertEqual(again.status_code, 200)

    def test_expired_access_token_is_soft_logout(self) -> None:
        first = self.login_with_refresh()
        AccessToken.objects.filter(expires_ts__isnull=False).update(expires_ts=now_ms() - 1)
        response = self.api(token=first["access_token"]).get(WHOAMI)
        self.assert_matrix_error(response, 401, "M_UNKNOWN_TOKEN")
        self.assertIs(response.body["soft_logout"], True)

    def test_unknown_refresh_token(self) -> None:
        response = self.api().post(REFRESH, {"refresh_token": "mhrt_nope"})
        self.assert_matrix_error(response, 401, "M_UNKNOWN_TOKEN")

    def test_missing_refresh_token(self) -> None:
        self.assert_matrix_error(self.api().post(REFRESH, {}), 400, "M_MISSING_PARAM")

    def test_tokens_without_refresh_do_not_expire(self) -> None:
        token = AccessToken.objects.filter(user=self.alice).get()
        self.assertIsNone(token.expires_ts)
