"""GET /pushers."""

from __future__ import annotations

from accounts.actions.devices import do_delete_devices
from matrixhs.testing import MatrixTestCase

PUSHERS = "/_matrix/client/v3/pushers"
HTTP_PUSHER = {
    "kind": "http",
    "app_id": "com.example.app.ios",
    "pushkey": "APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8",
    "app_display_name": "Mat Rix",
    "device_display_name": "iPhone 9",
    "profile_tag": "xxyyzz",
    "lang": "en",
    "data": {"url": "https://push.example.org/_matrix/push/v1/notify", "format": "event_id_only"},
}


class PushersTests(MatrixTestCase):
    def test_no_pushers_at_first(self) -> None:
        self.assertEqual(self.api(self.alice).get(PUSHERS).body, {"pushers": []})

    def test_lists_own_pushers_only(self) -> None:
        self.api(self.alice).post(f"{PUSHERS}/set", HTTP_PUSHER)
        self.assertEqual(self.api(self.alice).get(PUSHERS).body, {"pushers": [HTTP_PUSHER]})
        self.assertEqual(self.api(self.bob).get(PUSHERS).body, {"pushers": []})

    def test_pusher_goes_with_its_device(self) -> None:
        self.api(self.alice).post(f"{PUSHERS}/set", HTTP_PUSHER)
        do_delete_devices(self.alice, [self.alice.test_device_id])
        self.assertEqual(self.alice.pushers.count(), 0)
