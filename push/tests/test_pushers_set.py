"""POST /pushers/set."""

from __future__ import annotations

from django.test import override_settings

from matrixhs.testing import MatrixTestCase
from push.models import Pusher
from push.tests.test_pushers import HTTP_PUSHER, PUSHERS

SET = f"{PUSHERS}/set"


class PushersSetTests(MatrixTestCase):
    def test_create_update_delete(self) -> None:
        self.assertEqual(self.api(self.alice).post(SET, HTTP_PUSHER).body, {})
        self.api(self.alice).post(SET, {**HTTP_PUSHER, "lang": "fr"})
        self.assertEqual(list(Pusher.objects.values_list("lang", flat=True)), ["fr"])
        self.assertEqual(Pusher.objects.get().device.device_id, self.alice.test_device_id)
        self.api(self.alice).post(
            SET, {"kind": None, "app_id": HTTP_PUSHER["app_id"], "pushkey": HTTP_PUSHER["pushkey"]}
        )
        self.assertFalse(Pusher.objects.exists())

    def test_deleting_an_unknown_pusher_is_fine(self) -> None:
        response = self.api(self.alice).post(SET, {"kind": None, "app_id": "a", "pushkey": "k"})
        self.assertEqual(response.status_code, 200)

    def test_same_key_moves_between_users_unless_append(self) -> None:
        self.api(self.alice).post(SET, HTTP_PUSHER)
        self.api(self.bob).post(SET, HTTP_PUSHER)
        self.assertEqual(list(Pusher.objects.values_list("user__localpart", flat=True)), ["bob"])
        self.api(self.alice).post(SET, {**HTTP_PUSHER, "append": True})
        self.assertEqual(Pusher.objects.count(), 2)

    def test_missing_fields(self) -> None:
        response = self.api(self.alice).post(SET, {"kind": "http", "app_id": "a", "pushkey": "k"})
        self.assert_matrix_error(response, 400, "M_MISSING_PARAM")
        self.assertIn("app_display_name, device_display_name, lang, data", response.body["error"])
        body = {k: v for k, v in HTTP_PUSHER.items() if k != "kind"}
        self.assert_matrix_error(self.api(self.alice).post(SET, body), 400, "M_MISSING_PARAM")
        no_url = {**HTTP_PUSHER, "data": {"format": "event_id_only"}}
        self.assert_matrix_error(self.api(self.alice).post(SET, no_url), 400, "M_MISSING_PARAM")
        self.assertFalse(Pusher.objects.exists())

    def test_invalid_values(self) -> None:
        cases = [
            ({"kind": "carrier-pigeon"}, "M_INVALID_PARAM"),
            ({"kind": "email"}, "M_INVALID_PARAM"),
            ({"app_id": "a" * 65}, "M_INVALID_PARAM"),
            ({"pushkey": "é" * 257}, "M_INVALID_PARAM"),
            ({"data": {"url": "https://push.example.org/notify"}}, "M_INVALID_PARAM"),
            ({"data": {"url": "ftp://push.example.org/_matrix/push/v1/notify"}}, "M_INVALID_PARAM"),
            (
                {"data": {"url": "http://push.example.org/_matrix/push/v1/notify"}},
                "M_INVALID_PARAM",
            ),
            ({"data": {"url": 5}}, "M_BAD_JSON"),
            ({"data": "https://push.example.org/_matrix/push/v1/notify"}, "M_BAD_JSON"),
            ({"kind": 1}, "M_BAD_JSON"),
            ({"append": "yes"}, "M_BAD_JSON"),
        ]
        for change, errcode in cases:
            with self.subTest(change=change):
                response = self.api(self.alice).post(SET, {**HTTP_PUSHER, **change})
                self.assert_matrix_error(response, 400, errcode)
        self.assertFalse(Pusher.objects.exists())

    @override_settings(MATRIXHS_PUSH_ALLOW_HTTP=True)
    def test_plain_http_only_when_allowed(self) -> None:
        url = "http://127.0.0.1:5000/_matrix/push/v1/notify"
        response = self.api(self.alice).post(SET, {**HTTP_PUSHER, "data": {"url": url}})
        self.assertEqual(response.status_code, 200, response.body)
        self.assertEqual(Pusher.objects.get().data["url"], url)
