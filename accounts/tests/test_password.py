from __future__ import annotations

from django.contrib.auth.hashers import check_password

from accounts.actions.devices import do_login_device
from accounts.actions.tokens import issue_tokens
from accounts.actions.users import do_deactivate_user
from accounts.models import Device, User
from matrixhs.testing import MatrixTestCase, count_password_hashes

PASSWORD = "/_matrix/client/v3/account/password"
WHOAMI = "/_matrix/client/v3/account/whoami"


class PasswordTests(MatrixTestCase):
    def auth(self, session: str, password: str | None = None) -> dict:
        return {
            "type": "m.login.password",
            "session": session,
            "identifier": {"type": "m.id.user", "user": "alice"},
            "password": password or self.password,
        }

    def test_change_needs_uia_then_changes_and_logs_out_other_devices(self) -> None:
        other = issue_tokens(self.alice, do_login_device(self.alice, None, None), False)
        first = self.api(self.alice).post(PASSWORD, {"new_password": "new pw"})
        self.assertEqual(first.status_code, 401)
        self.assertEqual(first.body["flows"], [{"stages": ["m.login.password"]}])
        done = self.api(self.alice).post(
            PASSWORD, {"new_password": "new pw", "auth": self.auth(first.body["session"])}
        )
        self.assertEqual(done.status_code, 200, done.body)
        self.assertTrue(check_password("new pw", User.objects.get(pk=self.alice.pk).password))
        self.assertEqual(self.api(self.alice).get(WHOAMI).status_code, 200)
        self.assert_matrix_error(
            self.api(token=other["access_token"]).get(WHOAMI), 401, "M_UNKNOWN_TOKEN"
        )

    def test_logout_devices_false_keeps_other_devices(self) -> None:
        other = issue_tokens(self.alice, do_login_device(self.alice, None, None), False)
        session = self.api(self.alice).post(PASSWORD, {"new_password": "x"}).body["session"]
        self.api(self.alice).post(
            PASSWORD,
            {"new_password": "x", "logout_devices": False, "auth": self.auth(session)},
        )
        self.assertEqual(self.api(token=other["access_token"]).get(WHOAMI).status_code, 200)

    def test_wrong_password_fails_the_stage_and_changes_nothing(self) -> None:
        session = self.api(self.alice).post(PASSWORD, {"new_password": "x"}).body["session"]
        response = self.api(self.alice).post(
            PASSWORD, {"new_password": "x", "auth": self.auth(session, "wrong")}
        )
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.body["errcode"], "M_FORBIDDEN")
        self.assertEqual(response.body["completed"], [])
        self.assertTrue(check_password(self.password, User.objects.get(pk=self.alice.pk).password))

    def test_cannot_authenticate_as_someone_else(self) -> None:
        session = self.api(self.mallory).post(PASSWORD, {"new_password": "x"}).body["session"]
        auth = self.auth(session)  # alice's credentials, on mallory's request
        response = self.api(self.mallory).post(PASSWORD, {"new_password": "x", "auth": auth})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertTrue(
            check_password(self.password, User.objects.get(pk=self.mallory.pk).password)
        )

    def test_session_cannot_be_reused_by_another_user(self) -> None:
        session = self.api(self.alice).post(PASSWORD, {"new_password": "x"}).body["session"]
        response = self.api(self.bob).post(
            PASSWORD, {"new_password": "x", "auth": {**self.auth(session), "user": "bob"}}
        )
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")

    def test_missing_new_password(self) -> None:
        self.assert_matrix_error(self.api(self.alice).post(PASSWORD, {}), 400, "M_MISSING_PARAM")

    def test_without_a_token_the_password_stage_names_the_user(self) -> None:
        other = issue_tokens(self.alice, do_login_device(self.alice, None, None), False)
        first = self.api().post(PASSWORD, {"new_password": "x"})
        self.assertEqual(first.status_code, 401)
        done = self.api().post(
            PASSWORD, {"new_password": "x", "auth": self.auth(first.body["session"])}
        )
        self.assertEqual(done.status_code, 200, done.body)
        self.assertTrue(check_password("x", User.objects.get(pk=self.alice.pk).password))
        self.assertFalse(Device.objects.filter(user=self.alice).exists())
        self.assert_matrix_error(
            self.api(token=other["access_token"]).get(WHOAMI), 401, "M_UNKNOWN_TOKEN"
        )

    def test_without_a_token_a_wrong_password_changes_nothing(self) -> None:
        first = self.api().post(PASSWORD, {"new_password": "x"})
        response = self.api().post(
            PASSWORD, {"new_password": "x", "auth": self.auth(first.body["session"], "wrong")}
        )
        self.assertEqual(response.status_code, 401)
        self.assertTrue(check_password(self.password, User.objects.get(pk=self.alice.pk).password))

    def test_without_a_token_every_failure_costs_one_password_hash(self) -> None:
        User.objects.filter(pk=self.mallory.pk).update(is_active=False)
        do_deactivate_user(self.bob)
        for user, password in (
            ("alice", "wrong"),
            ("nobody", self.password),
            ("bob", self.password),
            ("mallory", self.password),
        ):
            first = self.api().post(PASSWORD, {"new_password": "x"})
            auth = {
                "type": "m.login.password",
                "session": first.body["session"],
                "identifier": {"type": "m.id.user", "user": user},
                "password": password,
            }
            with self.subTest(user=user), count_password_hashes() as hashes:
                response = self.api().post(PASSWORD, {"new_password": "x", "auth": auth})
                self.assert_matrix_error(response, 401, "M_FORBIDDEN")
                self.assertEqual(len(hashes), 1, hashes)


class NullAuthTests(MatrixTestCase):
    """matrix-js-sdk starts interactive auth with ``"auth": null``."""

    def test_null_auth_starts_interactive_auth(self) -> None:
        for path, body in (
            ("/_matrix/client/v3/account/password", {"auth": None, "new_password": "n3w pass"}),
            ("/_matrix/client/v3/account/deactivate", {"auth": None}),
            ("/_matrix/client/v3/delete_devices", {"auth": None, "devices": ["X"]}),
        ):
            got = self.api(self.alice).post(path, body)
            self.assertEqual(got.status_code, 401, (path, got.body))
            self.assertIn("flows", got.body)
            self.assertIn("session", got.body)
