"""The admin API's own tables: the audit log and the room-deletion jobs."""

from __future__ import annotations

from django.db import models


class AuditLogEntry(models.Model):
    """One change an operator made through the admin API: who, what, on what, when."""

    actor = models.CharField(max_length=255, help_text="The server admin's user ID.")
    action = models.CharField(max_length=64, help_text="e.g. user.deactivate, room.block")
    target = models.CharField(max_length=1000, help_text="The user, room, media or token.")
    ts = models.BigIntegerField(db_index=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "audit log entries"
        indexes = [models.Index(fields=["target", "ts"], name="auditlog_by_target")]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target}"


class RoomDeletion(models.Model):
    """A room shutdown/deletion an operator asked for (DELETE /_synapse/admin/v2/rooms/..).

    The periodic job runs it; every step can run again, so a crash resumes it."""

    SCHEDULED, ACTIVE, COMPLETE, FAILED = "scheduled", "active", "complete", "failed"
    STATUSES = [(s, s) for s in (SCHEDULED, ACTIVE, COMPLETE, FAILED)]

    delete_id = models.CharField(max_length=64, unique=True)
    room_id = models.CharField(max_length=255, db_index=True)
    requester = models.CharField(max_length=255)
    #: The request: new_room_user_id, room_name, message, block, purge.
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=STATUSES, default=SCHEDULED)
    error = models.TextField(blank=True, default="")
    #: kicked_users, failed_to_kick_users, local_aliases, new_room_id.
    result = models.JSONField(default=dict)
    created_ts = models.BigIntegerField()
    updated_ts = models.BigIntegerField()
    #: While a runner works on it (another waits until this passes).
    lease_until_ts = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.delete_id} {self.room_id} {self.status}"
