from __future__ import annotations

from accounts.actions.devices import do_login_device
from accounts.actions.tokens import issue_tokens
from accounts.models import AccessToken, Device
from matrixhs.testing import MatrixTestCase

WHOAMI = "/_matrix/client/v3/account/whoami"


class LogoutTests(MatrixTestCase):
    def test_logout_ends_the_session_and_deletes_the_device(self) -> None:
        response = self.api(self.alice).post("/_matrix/client/v3/logout")
        self.assertEqual((response.status_code, response.body), (200, {}))
        self.assertFalse(Device.objects.filter(user=self.alice).exists())
        self.assert_matrix_error(self.api(self.alice).get(WHOAMI), 401, "M_UNKNOWN_TOKEN")
        self.assertEqual(self.api(self.bob).get(WHOAMI).status_code, 200)

    def test_logout_all_ends_every_session(self) -> None:
        other = issue_tokens(self.alice, do_login_device(self.alice, None, None), False)
        response = self.api(self.alice).post("/_matrix/client/v3/logout/all")
        self.assertEqual(response.status_code, 200)
        self.assertFalse(AccessToken.objects.filter(user=self.alice).exists())
        self.assert_matrix_error(
            self.api(token=other["access_token"]).get(WHOAMI), 401, "M_UNKNOWN_TOKEN"
        )
        self.assertEqual(self.api(self.bob).get(WHOAMI).status_code, 200)

    def test_logout_needs_a_token(self) -> None:
        self.assert_matrix_error(
            self.api().post("/_matrix/client/v3/logout"), 401, "M_MISSING_TOKEN"
        )

    def test_logout_accepts_an_empty_body(self) -> None:
        response = self.api(self.alice).request("POST", "/_matrix/client/v3/logout")
        self.assertEqual(response.status_code, 200)


class WhoamiTests(MatrixTestCase):
    def test_whoami(self) -> None:
        response = self.api(self.alice).get(WHOAMI)
        self.assertEqual(
            response.body,
            {
                "user_id": "@alice:test.local",
                "device_id": self.alice.test_device_id,
                "is_guest": False,
            },
        )
