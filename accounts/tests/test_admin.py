"""The Django admin pages for operators."""

from __future__ import annotations

from accounts.actions.devices import do_login_device
from accounts.models import AccessToken, Device, RegistrationToken, User
from matrixhs.testing import MatrixTestCase


class AdminTests(MatrixTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.root = self.make_user("root", admin=True)
        self.client.force_login(self.root)

    def test_non_admins_cannot_use_the_admin(self) -> None:
        self.client.logout()
        self.client.force_login(self.alice)
        response = self.client.get("/admin/accounts/user/")
        self.assertEqual(response.status_code, 302)
        self.assertIn("/admin/login/", response["Location"])

    def test_user_search(self) -> None:
        page = self.client.get("/admin/accounts/user/?q=ali")
        self.assertContains(page, "@alice:test.local")
        self.assertNotContains(page, "@bob:test.local")

    def test_deactivate_action(self) -> None:
        self.client.post(
            "/admin/accounts/user/", {"action": "deactivate", "_selected_action": [self.bob.pk]}
        )
        bob = User.objects.get(pk=self.bob.pk)
        self.assertFalse(bob.is_active)
        self.assertFalse(AccessToken.objects.filter(user=bob).exists())

    def test_make_admin_action(self) -> None:
        self.client.post(
            "/admin/accounts/user/", {"action": "make_admin", "_selected_action": [self.alice.pk]}
        )
        self.assertTrue(User.objects.get(pk=self.alice.pk).is_admin)

    def test_reset_password_action(self) -> None:
        response = self.client.post(
            "/admin/accounts/user/",
            {"action": "reset_password", "_selected_action": [self.alice.pk]},
            follow=True,
        )
        self.assertContains(response, "New password for @alice:test.local")
        self.assertFalse(AccessToken.objects.filter(user=self.alice).exists())

    def test_revoke_device_action(self) -> None:
        do_login_device(self.alice, "SPARE", None)
        device = Device.objects.get(device_id="SPARE")
        self.client.post(
            "/admin/accounts/device/", {"action": "revoke", "_selected_action": [device.pk]}
        )
        self.assertFalse(Device.objects.filter(device_id="SPARE").exists())

    def test_create_and_revoke_registration_token(self) -> None:
        self.client.post(
            "/admin/accounts/registrationtoken/add/",
            {"token": "", "uses_allowed": "3", "expiry_ts": ""},
        )
        token = RegistrationToken.objects.get()
        self.assertEqual(token.uses_allowed, 3)
        self.assertTrue(token.token)
        self.client.post(
            "/admin/accounts/registrationtoken/",
            {"action": "revoke", "_selected_action": [token.pk]},
        )
        self.assertIsNotNone(RegistrationToken.objects.get().expiry_ts)

    def test_admin_pages_render(self) -> None:
        for url in (
            "/admin/",
            "/admin/accounts/user/",
            f"/admin/accounts/user/{self.alice.pk}/change/",
            "/admin/accounts/device/",
            "/admin/accounts/registrationtoken/add/",
        ):
            self.assertEqual(self.client.get(url).status_code, 200, url)
