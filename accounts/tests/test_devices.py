from __future__ import annotations

from accounts.actions.devices import do_login_device
from accounts.actions.tokens import issue_tokens
from accounts.models import Device
from matrixhs.testing import MatrixTestCase

DEVICES = "/_matrix/client/v3/devices"


class DeviceTests(MatrixTestCase):
    def test_list_devices(self) -> None:
        do_login_device(self.alice, "SECOND", "Phone")
        response = self.api(self.alice).get(DEVICES)
        ids = [d["device_id"] for d in response.body["devices"]]
        self.assertEqual(ids, [self.alice.test_device_id, "SECOND"])
        self.assertIn("last_seen_ts", response.body["devices"][0])  # set by this request

    def test_get_one_device(self) -> None:
        response = self.api(self.alice).get(f"{DEVICES}/{self.alice.test_device_id}")
        self.assertEqual(response.body["display_name"], "test device")

    def test_cannot_see_another_users_device(self) -> None:
        response = self.api(self.mallory).get(f"{DEVICES}/{self.alice.test_device_id}")
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")

    def test_rename_device(self) -> None:
        url = f"{DEVICES}/{self.alice.test_device_id}"
        self.assertEqual(self.api(self.alice).put(url, {"display_name": "Work"}).status_code, 200)
        self.assertEqual(self.api(self.alice).get(url).body["display_name"], "Work")

    def test_rename_unknown_device(self) -> None:
        response = self.api(self.alice).put(f"{DEVICES}/NOPE", {"display_name": "x"})
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")

    def test_rename_with_wrong_type(self) -> None:
        url = f"{DEVICES}/{self.alice.test_device_id}"
        self.assert_matrix_error(
            self.api(self.alice).put(url, {"display_name": 3}), 400, "M_BAD_JSON"
        )

    def uia(self, session: str, password: str | None = None) -> dict:
        return {
            "type": "m.login.password",
            "session": session,
            "password": password or self.password,
            "identifier": {"type": "m.id.user", "user": "alice"},
        }

    def test_delete_device_with_uia(self) -> None:
        other = do_login_device(self.alice, "OTHER", None)
        token = issue_tokens(self.alice, other, False)["access_token"]
        url = f"{DEVICES}/OTHER"
        first = self.api(self.alice).delete(url, {})
        self.assertEqual(first.status_code, 401)
        done = self.api(self.alice).delete(url, {"auth": self.uia(first.body["session"])})
        self.assertEqual(done.status_code, 200, done.body)
        self.assertFalse(Device.objects.filter(device_id="OTHER").exists())
        self.assert_matrix_error(
            self.api(token=token).get("/_matrix/client/v3/account/whoami"), 401, "M_UNKNOWN_TOKEN"
        )

    def test_delete_device_with_wrong_password_keeps_it(self) -> None:
        do_login_device(self.alice, "OTHER", None)
        first = self.api(self.alice).delete(f"{DEVICES}/OTHER")
        response = self.api(self.alice).delete(
            f"{DEVICES}/OTHER", {"auth": self.uia(first.body["session"], "wrong")}
        )
        self.assertEqual(response.status_code, 401)
        self.assertTrue(Device.objects.filter(device_id="OTHER").exists())

    def test_password_stage_naming_another_user_is_forbidden(self) -> None:
        do_login_device(self.alice, "OTHER", None)
        auth = {
            "type": "m.login.password",
            "password": self.password,  # bob's password: every test user has this one
            "identifier": {"type": "m.id.user", "user": self.bob.user_id},
        }
        response = self.api(self.alice).delete(f"{DEVICES}/OTHER", {"auth": auth})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertNotIn("flows", response.body)
        self.assertTrue(Device.objects.filter(device_id="OTHER").exists())

    def test_delete_unknown_device(self) -> None:
        self.assert_matrix_error(self.api(self.alice).delete(f"{DEVICES}/NOPE"), 404, "M_NOT_FOUND")

    def test_delete_devices_in_bulk(self) -> None:
        do_login_device(self.alice, "A1", None)
        do_login_device(self.alice, "A2", None)
        do_login_device(self.bob, "B1", None)
        url = "/_matrix/client/v3/delete_devices"
        body = {"devices": ["A1", "A2", "B1", "UNKNOWN"]}
        first = self.api(self.alice).post(url, body)
        self.assertEqual(first.status_code, 401)
        done = self.api(self.alice).post(url, {**body, "auth": self.uia(first.body["session"])})
        self.assertEqual(done.status_code, 200, done.body)
        self.assertEqual(
            set(Device.objects.filter(user=self.alice).values_list("device_id", flat=True)),
            {self.alice.test_device_id},
        )
        self.assertTrue(Device.objects.filter(device_id="B1").exists())

    def test_a_session_begun_for_some_devices_cannot_delete_others(self) -> None:
        do_login_device(self.alice, "A1", None)
        do_login_device(self.alice, "A2", None)
        url = "/_matrix/client/v3/delete_devices"
        first = self.api(self.alice).post(url, {"devices": ["A1"]})
        self.assertEqual(first.status_code, 401)
        auth = self.uia(first.body["session"])
        swapped = self.api(self.alice).post(url, {"devices": ["A2"], "auth": auth})
        self.assert_matrix_error(swapped, 403, "M_FORBIDDEN")
        more = self.api(self.alice).post(url, {"devices": ["A1", "A2"], "auth": auth})
        self.assert_matrix_error(more, 403, "M_FORBIDDEN")
        self.assertEqual(Device.objects.filter(device_id__in=["A1", "A2"]).count(), 2)
        done = self.api(self.alice).post(url, {"devices": ["A1"], "auth": auth})
        self.assertEqual(done.status_code, 200, done.body)
        self.assertEqual(
            list(
                Device.objects.filter(device_id__in=["A1", "A2"]).values_list(
                    "device_id", flat=True
                )
            ),
            ["A2"],
        )

    def test_delete_devices_needs_a_list(self) -> None:
        url = "/_matrix/client/v3/delete_devices"
        self.assert_matrix_error(self.api(self.alice).post(url, {}), 400, "M_MISSING_PARAM")
        self.assert_matrix_error(
            self.api(self.alice).post(url, {"devices": "A1"}), 400, "M_BAD_JSON"
        )
