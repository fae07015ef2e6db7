"""Push: the user's own push rules, their changes to the server-default rules, pushers.

The server-default rules themselves are data (push/rules.py): a user who never changed
anything has no row here. The whole ruleset a client sees is built by
push.queries.push_rules_content, and copied to the user's ``m.push_rules`` account data
on every change (push.actions), which is how /sync delivers it.
"""

from __future__ import annotations

from django.db import models

from accounts.models import Device, User
from rooms.models import Room


class PushRule(models.Model):
    """A rule the user made. ``position`` orders the user's rules of one kind: 0 is the
    most important."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="push_rules")
    kind = models.CharField(max_length=16)
    rule_id = models.CharField(max_length=255)
    position = models.IntegerField()
    #: override and underride rules; None for the other kinds.
    conditions = models.JSONField(null=True)
    #: content rules; None for the other kinds.
    pattern = models.TextField(null=True)
    actions = models.JSONField()
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "rule_id"], name="push_rule_unique")
        ]
        indexes = [models.Index(fields=["user", "kind", "position"], name="push_rule_order")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} {self.rule_id}"


class DefaultRuleSetting(models.Model):
    """The user's change to a server-default rule: enabled or not, other actions.
    None keeps the default."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    rule_id = models.CharField(max_length=255)
    enabled = models.BooleanField(null=True)
    actions = models.JSONField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "rule_id"], name="default_rule_setting_unique")
        ]


class Pusher(models.Model):
    """Where to push this user's notifications (spec: POST /pushers/set). A pusher goes
    with the device that set it up: logging that device out removes it."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="pushers")
    device = models.ForeignKey(Device, null=True, on_delete=models.CASCADE, related_name="pushers")
    kind = models.CharField(max_length=16)
    app_id = models.CharField(max_length=64)
    pushkey = models.CharField(max_length=512)
    app_display_name = models.TextField()
    device_display_name = models.TextField()
    profile_tag = models.TextField(null=True)
    lang = models.TextField()
    data = models.JSONField()
    created_ts = models.BigIntegerField()
    #: Delivery (push.actions.delivery): one drain at a time holds the lease; after a
    #: failure nothing is tried before retry_at_ms.
    lease_until_ms = models.BigIntegerField(default=0)
    retry_at_ms = models.BigIntegerField(default=0)
    retry_interval_ms = models.BigIntegerField(default=0)
    failures = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "app_id", "pushkey"], name="pusher_unique_per_user"
            )
        ]
        indexes = [models.Index(fields=["app_id", "pushkey"], name="pusher_by_key")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.app_id} {self.pushkey[:16]}"


class Notification(models.Model):
    """An event that notified a user by their push rules (spec "Listing Notifications").

    ``stream_ordering`` is the event's position: unread counts are the notifications after
    the user's latest read receipt. ``thread_id`` is "main" or the thread root's ID.
    """

    user_id = models.CharField(max_length=255)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=255)
    stream_ordering = models.BigIntegerField()
    thread_id = models.CharField(max_length=255)
    highlight = models.BooleanField()
    actions = models.JSONField()
    ts = models.BigIntegerField()

    class Meta:
        constraints = [
            # An event has one stream position: this is one row per user and event.
            models.UniqueConstraint(
                fields=["user_id", "stream_ordering"], name="notification_unique"
            )
        ]
        indexes = [
            models.Index(fields=["user_id", "room", "stream_ordering"], name="notif_by_room")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.event_id}"


class PushDelivery(models.Model):
    """A notification waiting to be posted to an http pusher's gateway: written with the
    notification, deleted once the gateway acknowledged it."""

    pusher = models.ForeignKey(Pusher, on_delete=models.CASCADE, related_name="+")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=255)
    stream_ordering = models.BigIntegerField()
    actions = models.JSONField()
    highlight = models.BooleanField()
    created_ts = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pusher", "stream_ordering"], name="push_delivery_unique"
            )
        ]
