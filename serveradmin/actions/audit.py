"""The audit log: every change made through the admin API is recorded here."""

from __future__ import annotations

from typing import Any

from matrixhs.time import now_ms
from serveradmin.models import AuditLogEntry


def do_record(actor: str, action: str, target: str, **details: Any) -> AuditLogEntry:
    """Record one change (call it in the transaction that makes the change)."""
    return AuditLogEntry.objects.create(
        actor=actor, action=action, target=target[:1000], ts=now_ms(), details=details
    )
