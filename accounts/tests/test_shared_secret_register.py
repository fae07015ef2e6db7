from __future__ import annotations

import hashlib
import hmac
from typing import Any
from unittest import mock

from django.test import override_settings

from accounts.models import User
from matrixhs.testing import ApiResponse, MatrixTestCase

REGISTER = "/_synapse/admin/v1/register"
SECRET = "correct horse battery staple"


def client_mac(
    secret: str, nonce: str, user: str, password: str, admin: bool, user_type: str | None = None
) -> str:
    """The MAC as register_new_matrix_user computes it (written from its documented format)."""
    mac = hmac.new(key=secret.encode("utf8"), digestmod=hashlib.sha1)
    mac.update(nonce.encode("utf8"))
    mac.update(b"\x00")
    mac.update(user.encode("utf8"))
    mac.update(b"\x00")
    mac.update(password.encode("utf8"))
    mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    if user_type:
        mac.update(b"\x00")
        mac.update(user_type.encode("utf8"))
    return mac.hexdigest()


@override_settings(MATRIXHS_REGISTRATION_SHARED_SECRET=SECRET)
class SharedSecretRegisterTests(MatrixTestCase):
    def nonce(self) -> str:
        response = self.api().get(REGISTER)
        self.assertEqual(response.status_code, 200, response.body)
        return str(response.body["nonce"])

    def register(self, secret: str = SECRET, **fields: Any) -> ApiResponse:
        body: dict[str, Any] = {
            "nonce": self.nonce(),
            "username": "carol",
            "password": "pw",
            "admin": False,
            "displayname": None,
            "user_type": None,
            **fields,
        }
        if "mac" not in fields:
            body["mac"] = client_mac(
                secret,
                body["nonce"],
                body["username"],
                body["password"],
                body["admin"],
                body["user_type"],
            )
        return self.api().post(REGISTER, body)

    def test_registers_and_logs_in(self) -> None:
        response = self.register(displayname="Carol")
        self.assertEqual(response.status_code, 200, response.body)
        self.assertEqual(response.body["user_id"], "@carol:test.local")
        self.assertEqual(response.body["home_server"], "test.local")
        self.assertTrue(response.body["device_id"])
        whoami = self.api(token=response.body["access_token"]).get(
            "/_matrix/client/v3/account/whoami"
        )
        self.assertEqual(whoami.body["user_id"], "@carol:test.local")
        user = User.objects.get(localpart="carol")
        self.assertFalse(user.is_admin)
        self.assertEqual(user.displayname, "Carol")
        self.assertTrue(user.check_password("pw"))

    def test_admin_flag_makes_an_admin(self) -> None:
        response = self.register(admin=True)
        self.assertEqual(response.status_code, 200, response.body)
        self.assertTrue(User.objects.get(localpart="carol").is_admin)

    def test_user_type_is_part_of_the_mac(self) -> None:
        response = self.register(user_type="bot")
        self.assertEqual(response.status_code, 200, response.body)

    def test_wrong_secret_is_forbidden(self) -> None:
        response = self.register(secret="wrong")
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertFalse(User.objects.filter(localpart="carol").exists())

    def test_admin_flag_not_covered_by_the_mac_is_forbidden(self) -> None:
        nonce = self.nonce()
        body = {
            "nonce": nonce,
            "username": "carol",
            "password": "pw",
            "admin": True,
            "mac": client_mac(SECRET, nonce, "carol", "pw", admin=False),
        }
        self.assert_matrix_error(self.api().post(REGISTER, body), 403, "M_FORBIDDEN")

    def test_nonce_is_single_use(self) -> None:
        nonce = self.nonce()
        body = {
            "nonce": nonce,
            "username": "carol",
            "password": "pw",
            "mac": client_mac(SECRET, nonce, "carol", "pw", admin=False),
        }
        self.assertEqual(self.api().post(REGISTER, body).status_code, 200)
        body["username"] = "dave"
        body["mac"] = client_mac(SECRET, nonce, "dave", "pw", admin=False)
        self.assert_matrix_error(self.api().post(REGISTER, body), 400, "M_INVALID_PARAM")

    def test_unknown_nonce_is_refused(self) -> None:
        body = {
            "nonce": "made-up",
            "username": "carol",
            "password": "pw",
            "mac": client_mac(SECRET, "made-up", "carol", "pw", admin=False),
        }
        self.assert_matrix_error(self.api().post(REGISTER, body), 400, "M_INVALID_PARAM")

    def test_expired_nonce_is_refused(self) -> None:
        nonce = self.nonce()
        with mock.patch("accounts.actions.shared_secret.cache.delete", return_value=False):
            response = self.api().post(
                REGISTER,
                {
                    "nonce": nonce,
                    "username": "carol",
                    "password": "pw",
                    "mac": client_mac(SECRET, nonce, "carol", "pw", admin=False),
                },
            )
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")

    def test_taken_username_is_user_in_use(self) -> None:
        self.assert_matrix_error(self.register(username="alice"), 400, "M_USER_IN_USE")

    def test_invalid_username_is_refused(self) -> None:
        self.assert_matrix_error(self.register(username="car ol"), 400, "M_INVALID_USERNAME")

    def test_missing_or_mistyped_fields_are_matrix_errors(self) -> None:
        response = self.api().post(REGISTER, {"nonce": self.nonce(), "username": "carol"})
        self.assert_matrix_error(response, 400, "M_MISSING_PARAM")
        response = self.register(admin="yes", mac="00")
        self.assert_matrix_error(response, 400, "M_BAD_JSON")

    @override_settings(MATRIXHS_REGISTRATION_SHARED_SECRET="")
    def test_disabled_without_a_secret(self) -> None:
        self.assert_matrix_error(self.api().get(REGISTER), 400, "M_UNKNOWN")
        body = {"nonce": "n", "username": "carol", "password": "pw", "mac": "00"}
        self.assert_matrix_error(self.api().post(REGISTER, body), 400, "M_UNKNOWN")
        self.assertFalse(User.objects.filter(localpart="carol").exists())
