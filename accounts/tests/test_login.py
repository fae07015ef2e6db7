from __future__ import annotations

from accounts.actions.users import do_deactivate_user
from accounts.models import AccessToken, Device, User
from matrixhs.testing import MatrixTestCase, count_password_hashes

LOGIN = "/_matrix/client/v3/login"


class LoginTests(MatrixTestCase):
    def login(self, **body: object) -> object:
        payload = {"type": "m.login.password", "password": self.password, **body}
        return self.api().post(LOGIN, payload)

    def test_flows_offer_password(self) -> None:
        response = self.api().get(LOGIN)
        self.assertIn({"type": "m.login.password"}, response.body["flows"])

    def test_login_with_identifier_localpart(self) -> None:
        response = self.login(identifier={"type": "m.id.user", "user": "alice"})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.body["user_id"], "@alice:test.local")
        whoami = self.api(token=response.body["access_token"]).get(
            "/_matrix/client/v3/account/whoami"
        )
        self.assertEqual(whoami.body["device_id"], response.body["device_id"])

    def test_login_with_full_user_id_and_capitals(self) -> None:
        response = self.login(identifier={"type": "m.id.user", "user": "@ALICE:test.local"})
        self.assertEqual(response.body["user_id"], "@alice:test.local")

    def test_login_with_deprecated_user_field(self) -> None:
        self.assertEqual(self.login(user="alice").status_code, 200)

    def test_wrong_password_is_forbidden(self) -> None:
        tokens_before = AccessToken.objects.count()
        response = self.login(identifier={"type": "m.id.user", "user": "alice"}, password="nope")
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertEqual(AccessToken.objects.count(), tokens_before)

    def test_unknown_user_is_forbidden(self) -> None:
        response = self.login(identifier={"type": "m.id.user", "user": "nobody"})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")

    def test_other_server_user_is_forbidden(self) -> None:
        response = self.login(identifier={"type": "m.id.user", "user": "@alice:elsewhere"})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")

    def test_deactivated_user_is_told_only_with_the_right_password(self) -> None:
        User.objects.filter(pk=self.bob.pk).update(is_active=False)
        bob = {"type": "m.id.user", "user": "bob"}
        self.assert_matrix_error(self.login(identifier=bob), 403, "M_USER_DEACTIVATED")
        self.assert_matrix_error(self.login(identifier=bob, password="no"), 403, "M_FORBIDDEN")

    def test_deactivated_user_without_a_password_is_like_an_unknown_one(self) -> None:
        do_deactivate_user(self.bob)  # drops the password hash
        response = self.login(identifier={"type": "m.id.user", "user": "bob"})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")

    def test_every_failure_costs_one_password_hash(self) -> None:
        User.objects.filter(pk=self.mallory.pk).update(is_active=False)
        do_deactivate_user(self.bob)
        for user, password in (
            ("alice", "wrong"),
            ("nobody", self.password),
            ("@alice:elsewhere", self.password),
            ("bob", self.password),
            ("mallory", "wrong"),
        ):
            with self.subTest(user=user), count_password_hashes() as hashes:
                response = self.login(
                    identifier={"type": "m.id.user", "user": user}, password=password
                )
                self.assertEqual(response.status_code, 403)
                self.assertEqual(len(hashes), 1, hashes)

    def test_unknown_login_type(self) -> None:
        response = self.api().post(LOGIN, {"type": "m.login.magic"})
        self.assert_matrix_error(response, 400, "M_UNKNOWN")

    def test_unknown_identifier_type(self) -> None:
        response = self.login(identifier={"type": "m.id.thirdparty", "medium": "email"})
        self.assert_matrix_error(response, 400, "M_UNKNOWN")

    def test_missing_password(self) -> None:
        response = self.api().post(
            LOGIN, {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "x"}}
        )
        self.assert_matrix_error(response, 400, "M_MISSING_PARAM")

    def test_reusing_device_id_logs_out_its_old_session(self) -> None:
        old = self.alice.test_token
        response = self.login(user="alice", device_id=self.alice.test_device_id)
        self.assertEqual(response.body["device_id"], self.alice.test_device_id)
        self.assertEqual(Device.objects.filter(user=self.alice).count(), 1)
        self.assert_matrix_error(
            self.api(token=old).get("/_matrix/client/v3/account/whoami"), 401, "M_UNKNOWN_TOKEN"
        )

    def test_initial_device_display_name(self) -> None:
        response = self.login(user="alice", initial_device_display_name="Laptop")
        device = Device.objects.get(user=self.alice, device_id=response.body["device_id"])
        self.assertEqual(device.display_name, "Laptop")

    def test_well_known_in_response(self) -> None:
        response = self.login(user="alice")
        self.assertIn("base_url", response.body["well_known"]["m.homeserver"])
