"""Sync: the filters users upload, presence, and sliding sync connections."""

from __future__ import annotations

from django.db import models

from accounts.models import User


class Filter(models.Model):
    """A filter a user uploaded (POST /user/{userId}/filter), as they sent it.

    Filter IDs count up per user ("0", "1", ...): they are only meaningful with their
    user. Uploading the same filter again gives the same ID back.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    filter_id = models.CharField(max_length=32)
    definition = models.JSONField()
    #: SHA-256 of the definition as sorted, compact JSON.
    definition_hash = models.CharField(max_length=64)
    created_ts = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "filter_id"], name="filter_unique_per_user")
        ]
        indexes = [models.Index(fields=["user", "definition_hash"], name="filter_by_hash")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.filter_id}"


class Presence(models.Model):
    """A user's presence, updated in place. ``stream_id`` is the presence-stream position
    of the last change clients must hear of; timestamps alone move without one."""

    user_id = models.CharField(max_length=255, unique=True)
    #: online, unavailable or offline.
    state = models.CharField(max_length=16)
    status_msg = models.TextField(null=True)
    #: Last pro-active action (0: never): a sync or PUT while online.
    last_active_ts = models.BigIntegerField(default=0)
    #: Last /sync that did not ask to stay offline; keeps an idle user from going offline.
    last_sync_ts = models.BigIntegerField(default=0)
    currently_active = models.BooleanField(default=False)
    stream_id = models.BigIntegerField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["state", "last_active_ts"], name="presence_by_activity")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.state}"


class SlidingSyncConnection(models.Model):
    """One sliding sync connection (MSC4186): a user's device and the client's conn_id."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    device_id = models.CharField(max_length=255)
    conn_id = models.CharField(max_length=255, blank=True)
    next_number = models.PositiveIntegerField(default=1)
    created_ts = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "device_id", "conn_id"], name="sliding_connection_unique"
            )
        ]


class SlidingSyncPosition(models.Model):
    """What a connection had been sent as of one ``pos``: the stream positions and, per
    room, up to where and with which config (sync/connections.py)."""

    connection = models.ForeignKey(
        SlidingSyncConnection, on_delete=models.CASCADE, related_name="positions"
    )
    number = models.PositiveIntegerField()
    token = models.CharField(max_length=255)
    rooms = models.JSONField(default=dict)
    created_ts = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "number"], name="sliding_position_unique")
        ]
