from __future__ import annotations

from django.test import override_settings

from accounts.models import AccessToken, Device, RegistrationToken, UIASession, User
from matrixhs.testing import MatrixTestCase
from matrixhs.time import now_ms

REGISTER = "/_matrix/client/v3/register"
DUMMY = {"type": "m.login.dummy"}


class RegisterTests(MatrixTestCase):
    def register(self, body: dict, query: str = "") -> object:
        return self.api().post(REGISTER + query, body)

    def test_first_step_returns_flows_and_session(self) -> None:
        response = self.register({"username": "carol", "password": "pw"})
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.body["flows"], [{"stages": ["m.login.dummy"]}])
        self.assertTrue(response.body["session"])
        self.assertFalse(User.objects.filter(localpart="carol").exists())

    def test_empty_body_returns_flows(self) -> None:
        # Clients (Element Web among them) ask for the flows with an empty body.
        response = self.register({})
        self.assertEqual(response.status_code, 401, response.body)
        self.assertEqual(response.body["flows"], [{"stages": ["m.login.dummy"]}])
        self.assertTrue(UIASession.objects.filter(session_id=response.body["session"]).exists())

    @override_settings(MATRIXHS_REGISTRATION="token")
    def test_empty_body_returns_token_flow(self) -> None:
        response = self.register({})
        self.assertEqual(response.status_code, 401, response.body)
        self.assertEqual(response.body["flows"], [{"stages": ["m.login.registration_token"]}])

    def test_password_may_come_after_the_flows(self) -> None:
        session = self.register({"username": "carol"}).body["session"]
        response = self.register(
            {"username": "carol", "password": "pw", "auth": {**DUMMY, "session": session}}
        )
        self.assertEqual(response.status_code, 200, response.body)
        self.assertEqual(response.body["user_id"], "@carol:test.local")

    def test_dummy_stage_with_session_registers_and_logs_in(self) -> None:
        session = self.register({"username": "carol", "password": "pw"}).body["session"]
        response = self.register(
            {
                "username": "carol",
                "password": "pw",
                "auth": {**DUMMY, "session": session},
                "initial_device_display_name": "Carol's phone",
            }
        )
        self.assertEqual(response.status_code, 200, response.body)
        self.assertEqual(response.body["user_id"], "@carol:test.local")
        device = Device.objects.get(user__localpart="carol")
        self.assertEqual(device.device_id, response.body["device_id"])
        self.assertEqual(device.display_name, "Carol's phone")
        whoami = self.api(token=response.body["access_token"]).get(
            "/_matrix/client/v3/account/whoami"
        )
        self.assertEqual(whoami.body["user_id"], "@carol:test.local")
        self.assertFalse(UIASession.objects.filter(session_id=session).exists())

    def test_dummy_stage_without_session_registers(self) -> None:
        response = self.register({"username": "carol", "password": "pw", "auth": DUMMY})
        self.assertEqual(response.status_code, 200)

    def test_password_is_stored_as_argon2id(self) -> None:
        self.register({"username": "carol", "password": "pw", "auth": DUMMY})
        self.assertTrue(User.objects.get(localpart="carol").password.startswith("argon2$argon2id$"))

    def test_username_is_lower_cased(self) -> None:
        response = self.register({"username": "CaRoL", "password": "pw", "auth": DUMMY})
        self.assertEqual(response.body["user_id"], "@carol:test.local")

    def test_username_is_generated_when_omitted(self) -> None:
        response = self.register({"password": "pw", "auth": DUMMY})
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.body["user_id"].endswith(":test.local"))

    def test_invalid_username_is_rejected_before_uia(self) -> None:
        for name in ("caröl", "car ol", "car:ol", "_carol", "a" * 250):
            response = self.register({"username": name, "password": "pw"})
            self.assert_matrix_error(response, 400, "M_INVALID_USERNAME")
        self.assertEqual(User.objects.count(), 3)

    def test_taken_username_is_user_in_use(self) -> None:
        response = self.register({"username": "alice", "password": "pw", "auth": DUMMY})
        self.assert_matrix_error(response, 400, "M_USER_IN_USE")

    def test_missing_password_is_missing_param(self) -> None:
        response = self.register({"username": "carol", "auth": DUMMY})
        self.assert_matrix_error(response, 400, "M_MISSING_PARAM")
        self.assertFalse(User.objects.filter(localpart="carol").exists())

    def test_wrongly_typed_field_is_bad_json(self) -> None:
        response = self.register({"username": "carol", "password": 12345, "auth": DUMMY})
        self.assert_matrix_error(response, 400, "M_BAD_JSON")
        response = self.register({"username": "carol", "password": "pw", "inhibit_login": "yes"})
        self.assert_matrix_error(response, 400, "M_BAD_JSON")

    def test_inhibit_login_creates_no_device(self) -> None:
        response = self.register(
            {"username": "carol", "password": "pw", "auth": DUMMY, "inhibit_login": True}
        )
        self.assertEqual(response.status_code, 200)
        self.assertNotIn("access_token", response.body)
        self.assertFalse(Device.objects.filter(user__localpart="carol").exists())

    def test_refresh_token_requested_gives_expiring_token(self) -> None:
        response = self.register(
            {"username": "carol", "password": "pw", "auth": DUMMY, "refresh_token": True}
        )
        self.assertIn("refresh_token", response.body)
        self.assertGreater(response.body["expires_in_ms"], 0)

    def test_chosen_device_id_is_used(self) -> None:
        response = self.register(
            {"username": "carol", "password": "pw", "auth": DUMMY, "device_id": "MYDEVICE"}
        )
        self.assertEqual(response.body["device_id"], "MYDEVICE")

    def test_unknown_session_is_rejected(self) -> None:
        response = self.register(
            {"username": "carol", "password": "pw", "auth": {**DUMMY, "session": "nope"}}
        )
        self.assertEqual(response.status_code, 400)
        self.assertFalse(User.objects.filter(localpart="carol").exists())

    def test_unknown_stage_is_refused(self) -> None:
        response = self.register(
            {"username": "carol", "password": "pw", "auth": {"type": "m.login.password"}}
        )
        self.assertEqual(response.status_code, 401)
        self.assertIn("errcode", response.body)
        self.assertFalse(User.objects.filter(localpart="carol").exists())

    @override_settings(MATRIXHS_REGISTRATION="disabled")
    def test_disabled_registration_is_forbidden(self) -> None:
        response = self.register({"username": "carol", "password": "pw", "auth": DUMMY})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")

    def test_guest_registration_is_refused_when_disabled(self) -> None:
        response = self.register({}, "?kind=guest")
        self.assert_matrix_error(response, 403, "M_GUEST_ACCESS_FORBIDDEN")
        self.assertEqual(User.objects.count(), 3)

    @override_settings(MATRIXHS_GUEST_ACCESS=True)
    def test_guest_registration_when_enabled(self) -> None:
        response = self.register({}, "?kind=guest")
        self.assertEqual(response.status_code, 200)
        guest = self.api(token=response.body["access_token"])
        self.assertIs(guest.get("/_matrix/client/v3/account/whoami").body["is_guest"], True)
        # Guests may not use endpoints outside the spec's guest list.
        response = guest.post("/_matrix/client/v3/delete_devices", {"devices": []})
        self.assert_matrix_error(response, 403, "M_GUEST_ACCESS_FORBIDDEN")

    def test_unknown_kind_is_invalid_param(self) -> None:
        self.assert_matrix_error(self.register({}, "?kind=robot"), 400, "M_INVALID_PARAM")


@override_settings(MATRIXHS_REGISTRATION="token")
class RegistrationTokenTests(MatrixTestCase):
    def setUp(self) -> None:
        super().setUp()
        RegistrationToken.objects.create(token="family", uses_allowed=1, created_ts=now_ms())

    def test_flow_is_the_token_stage(self) -> None:
        response = self.api().post(REGISTER, {"username": "carol", "password": "pw"})
        self.assertEqual(response.body["flows"], [{"stages": ["m.login.registration_token"]}])

    def test_dummy_is_not_enough(self) -> None:
        response = self.api().post(REGISTER, {"username": "carol", "password": "pw", "auth": DUMMY})
        self.assertEqual(response.status_code, 401)
        self.assertFalse(User.objects.filter(localpart="carol").exists())

    def test_valid_token_registers_and_is_counted(self) -> None:
        auth = {"type": "m.login.registration_token", "token": "family"}
        response = self.api().post(REGISTER, {"username": "carol", "password": "pw", "auth": auth})
        self.assertEqual(response.status_code, 200, response.body)
        token = RegistrationToken.objects.get(token="family")
        self.assertEqual((token.pending, token.completed), (0, 1))

    def test_used_up_token_is_refused(self) -> None:
        auth = {"type": "m.login.registration_token", "token": "family"}
        self.api().post(REGISTER, {"username": "carol", "password": "pw", "auth": auth})
        response = self.api().post(REGISTER, {"username": "dave", "password": "pw", "auth": auth})
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.body["errcode"], "M_UNAUTHORIZED")
        self.assertFalse(User.objects.filter(localpart="dave").exists())

    def test_wrong_token_is_refused(self) -> None:
        auth = {"type": "m.login.registration_token", "token": "wrong"}
        response = self.api().post(REGISTER, {"username": "carol", "password": "pw", "auth": auth})
        self.assertEqual(response.status_code, 401)
        self.assertEqual(RegistrationToken.objects.get(token="family").pending, 0)

    def test_validity_endpoint(self) -> None:
        url = "/_matrix/client/v1/register/m.login.registration_token/validity?token="
        self.assertIs(self.api().get(url + "family").body["valid"], True)
        self.assertIs(self.api().get(url + "nope").body["valid"], False)
        RegistrationToken.objects.filter(token="family").update(expiry_ts=now_ms() - 1)
        self.assertIs(self.api().get(url + "family").body["valid"], False)


class AvailabilityTests(MatrixTestCase):
    URL = "/_matrix/client/v3/register/available?username="

    def test_free_name_is_available(self) -> None:
        response = self.api().get(self.URL + "carol")
        self.assertEqual(response.body, {"available": True})

    def test_taken_name(self) -> None:
        self.assert_matrix_error(self.api().get(self.URL + "alice"), 400, "M_USER_IN_USE")

    def test_invalid_name(self) -> None:
        self.assert_matrix_error(self.api().get(self.URL + "a%20b"), 400, "M_INVALID_USERNAME")

    def test_missing_username(self) -> None:
        response = self.api().get("/_matrix/client/v3/register/available")
        self.assert_matrix_error(response, 400, "M_MISSING_PARAM")


class UnchangedOnFailureTests(MatrixTestCase):
    def test_failed_registration_leaves_no_token_or_device(self) -> None:
        before = (AccessToken.objects.count(), Device.objects.count())
        self.api().post(REGISTER, {"username": "alice", "password": "pw", "auth": DUMMY})
        self.assertEqual((AccessToken.objects.count(), Device.objects.count()), before)
