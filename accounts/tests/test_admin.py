"""The Django admin pages for operators."""

from __future__ import annotations

import importlib
import types
from unittest import mock

from django.core.cache import cache
from django.test import Client, override_settings

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


ADMIN_LOGIN = "/admin/login/"


class AdminLoginTests(MatrixTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.root = self.make_user("root", admin=True)
        cache.clear()

    @override_settings(
        MATRIXHS_RATELIMIT_ENABLED=True, MATRIXHS_RATELIMITS={"client": (100, 60), "auth": (2, 60)}
    )
    def test_login_attempts_are_rate_limited_per_address(self) -> None:
        wrong = {"username": "root", "password": "guess", "next": "/admin/"}
        statuses = [self.client.post(ADMIN_LOGIN, wrong).status_code for _ in range(3)]
        self.assertEqual(statuses, [200, 200, 429])
        right = {**wrong, "password": self.password}
        limited = self.client.post(ADMIN_LOGIN, right)
        self.assertEqual(limited.status_code, 429)
        self.assertGreaterEqual(int(limited["Retry-After"]), 1)
        self.assertEqual(self.client.get("/admin/").status_code, 302)  # not logged in
        elsewhere = Client(REMOTE_ADDR="192.0.2.7")
        self.assertEqual(elsewhere.post(ADMIN_LOGIN, right).status_code, 302)
        # Showing the form is not an attempt.
        self.assertEqual(self.client.get(ADMIN_LOGIN).status_code, 200)

    def test_pages_cannot_be_framed(self) -> None:
        response = self.client.get(ADMIN_LOGIN)
        self.assertEqual(response["X-Frame-Options"], "DENY")
        self.assertEqual(response["X-Content-Type-Options"], "nosniff")
        self.client.force_login(self.root)
        self.assertEqual(self.client.get("/admin/accounts/user/")["X-Frame-Options"], "DENY")

    def test_cookies_are_secure_when_served_over_https(self) -> None:
        https = settings_with(MATRIXHS_PUBLIC_BASEURL="https://matrix.example.org")
        self.assertEqual(
            (https.SESSION_COOKIE_SECURE, https.CSRF_COOKIE_SECURE, https.CSRF_TRUSTED_ORIGINS),
            (True, True, ["https://matrix.example.org"]),
        )
        plain = settings_with(MATRIXHS_PUBLIC_BASEURL="http://127.0.0.1:8008")
        self.assertEqual((plain.SESSION_COOKIE_SECURE, plain.CSRF_COOKIE_SECURE), (False, False))
        with override_settings(
            SESSION_COOKIE_SECURE=https.SESSION_COOKIE_SECURE,
            CSRF_COOKIE_SECURE=https.CSRF_COOKIE_SECURE,
            CSRF_TRUSTED_ORIGINS=https.CSRF_TRUSTED_ORIGINS,
        ):
            client = Client(enforce_csrf_checks=True)
            form = client.get(ADMIN_LOGIN, secure=True)
            self.assertTrue(form.cookies["csrftoken"]["secure"])
            response = client.post(
                ADMIN_LOGIN,
                {
                    "username": "root",
                    "password": self.password,
                    "next": "/admin/",
                    "csrfmiddlewaretoken": form.cookies["csrftoken"].value,
                },
                secure=True,
                headers={"Origin": "https://matrix.example.org"},
            )
            self.assertEqual(response.status_code, 302)
            self.assertTrue(response.cookies["sessionid"]["secure"])
            self.assertTrue(response.cookies["sessionid"]["httponly"])


def settings_with(**env: str) -> types.SimpleNamespace:
    """The settings module as it reads with these variables set."""
    import matrixhs.settings

    with mock.patch.dict("os.environ", env):
        module = importlib.reload(matrixhs.settings)
        values = types.SimpleNamespace(**vars(module))
    importlib.reload(matrixhs.settings)
    return values
