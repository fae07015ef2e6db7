from __future__ import annotations

from io import StringIO

from django.core.management import call_command

from accounts.models import User
from serveradmin.models import AuditLogEntry
from serveradmin.tests.base import V1, AdminTestCase


class DjangoAdminTests(AdminTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.client.force_login(self.alice)

    def test_audit_log_is_shown_read_only(self) -> None:
        self.api(self.alice).put(f"{V1}/users/@bob:test.local/admin", {"admin": True})
        entry = AuditLogEntry.objects.get()
        page = self.client.get("/admin/serveradmin/auditlogentry/")
        self.assertContains(page, "user.set_admin")
        self.assertContains(page, "@bob:test.local")
        detail = self.client.get(f"/admin/serveradmin/auditlogentry/{entry.pk}/change/")
        self.assertEqual(detail.status_code, 200)
        self.assertNotContains(detail, 'name="_save"')
        self.assertEqual(self.client.get("/admin/serveradmin/auditlogentry/add/").status_code, 403)
        delete = self.client.post(
            f"/admin/serveradmin/auditlogentry/{entry.pk}/delete/", {"post": "yes"}
        )
        self.assertEqual(delete.status_code, 403)
        self.assertTrue(AuditLogEntry.objects.filter(pk=entry.pk).exists())

    def test_lock_and_suspend_actions(self) -> None:
        self.client.post(
            "/admin/accounts/user/", {"action": "lock", "_selected_action": [self.bob.pk]}
        )
        self.client.post(
            "/admin/accounts/user/", {"action": "suspend", "_selected_action": [self.bob.pk]}
        )
        bob = User.objects.get(pk=self.bob.pk)
        self.assertEqual((bob.locked, bob.suspended), (True, True))


class ModerateUserCommandTests(AdminTestCase):
    def test_lock_then_unlock(self) -> None:
        out = StringIO()
        call_command("moderate_user", "@bob:test.local", "--lock", stdout=out)
        self.assertTrue(User.objects.get(pk=self.bob.pk).locked)
        self.assertIn("Locked @bob:test.local", out.getvalue())
        call_command("moderate_user", "@bob:test.local", "--unlock", stdout=out)
        self.assertFalse(User.objects.get(pk=self.bob.pk).locked)
        call_command("moderate_user", "@bob:test.local", "--suspend", stdout=out)
        self.assertTrue(User.objects.get(pk=self.bob.pk).suspended)
