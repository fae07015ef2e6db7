from __future__ import annotations

from accounts.actions.users import do_set_admin
from matrixhs.testing import MatrixTestCase
from serveradmin.models import AuditLogEntry

V1 = "/_synapse/admin/v1"
V2 = "/_synapse/admin/v2"


class AdminTestCase(MatrixTestCase):
    """alice is a server admin; bob and mallory are not."""

    def setUp(self) -> None:
        super().setUp()
        do_set_admin(self.alice, True)

    def assert_audited(self, action: str, target: str) -> AuditLogEntry:
        entry = AuditLogEntry.objects.filter(action=action, target=target).last()
        self.assertIsNotNone(entry, f"no audit entry {action} {target}")
        assert entry is not None
        self.assertEqual(entry.actor, self.alice.user_id)
        return entry
