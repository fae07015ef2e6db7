"""The operator's manage.py commands."""

from __future__ import annotations

from io import StringIO
from unittest import mock

from django.contrib.auth.hashers import check_password
from django.core.management import CommandError, call_command

from accounts.models import AccessToken, RegistrationToken, User
from matrixhs.testing import MatrixTestCase


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


class RegisterUserCommandTests(MatrixTestCase):
    def test_with_flags(self) -> None:
        output = run("register_user", "carol", "--password", "pw", "--admin", "--no-input")
        self.assertIn("@carol:test.local", output)
        carol = User.objects.get(localpart="carol")
        self.assertTrue(carol.is_admin and carol.is_staff)
        self.assertTrue(check_password("pw", carol.password))

    def test_interactive(self) -> None:
        with (
            mock.patch("builtins.input", return_value="Dave"),
            mock.patch("getpass.getpass", side_effect=["secret", "secret"]),
        ):
            run("register_user")
        dave = User.objects.get(localpart="dave")
        self.assertFalse(dave.is_admin)
        self.assertTrue(check_password("secret", dave.password))

    def test_interactive_password_mismatch(self) -> None:
        with mock.patch("getpass.getpass", side_effect=["a", "b"]), self.assertRaises(CommandError):
            run("register_user", "erin")
        self.assertFalse(User.objects.filter(localpart="erin").exists())

    def test_taken_or_invalid_names_fail(self) -> None:
        with self.assertRaisesMessage(CommandError, "M_USER_IN_USE"):
            run("register_user", "alice", "--password", "x", "--no-input")
        with self.assertRaisesMessage(CommandError, "M_INVALID_USERNAME"):
            run("register_user", "a b", "--password", "x", "--no-input")

    def test_no_input_without_password_fails(self) -> None:
        with self.assertRaises(CommandError):
            run("register_user", "frank", "--no-input")


class ListAndDeactivateCommandTests(MatrixTestCase):
    def test_list_users(self) -> None:
        output = run("list_users")
        self.assertIn("@alice:test.local", output)
        self.assertIn("@mallory:test.local", output)

    def test_deactivate_needs_for_real(self) -> None:
        with self.assertRaises(CommandError):
            run("deactivate_user", "@bob:test.local")
        self.assertTrue(User.objects.get(pk=self.bob.pk).is_active)

    def test_deactivate(self) -> None:
        run("deactivate_user", "@bob:test.local", "--for-real")
        self.assertFalse(User.objects.get(pk=self.bob.pk).is_active)
        self.assertFalse(AccessToken.objects.filter(user=self.bob).exists())
        self.assertNotIn("@bob:test.local", run("list_users"))
        self.assertIn("@bob:test.local\tdeactivated", run("list_users", "--all"))

    def test_deactivate_unknown_user(self) -> None:
        with self.assertRaises(CommandError):
            run("deactivate_user", "@nobody:test.local", "--for-real")


class RegistrationTokenCommandTests(MatrixTestCase):
    def test_create_and_list(self) -> None:
        token = run("create_registration_token", "--uses", "2", "--expires-in-days", "7").strip()
        row = RegistrationToken.objects.get(token=token)
        self.assertEqual(row.uses_allowed, 2)
        self.assertIsNotNone(row.expiry_ts)
        listing = run("list_registration_tokens")
        self.assertIn(f"{token}\t0/2\t0\t", listing)
        self.assertTrue(listing.strip().endswith("yes"))

    def test_create_named_token_twice_fails(self) -> None:
        run("create_registration_token", "--token", "family")
        with self.assertRaises(CommandError):
            run("create_registration_token", "--token", "family")

    def test_invalid_token_grammar(self) -> None:
        with self.assertRaises(CommandError):
            run("create_registration_token", "--token", "no spaces")
