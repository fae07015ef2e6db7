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


class SharedNotification(models.Model):
    """An event that notified, the same way, every local user joined to its room at the
    event (a :class:`MembershipSpan` of theirs covers ``stream_ordering``) but those listed
    in :class:`NotificationExclusion` for it: one row in place of a :class:`Notification`
    per member, for a message in a big room (push.actions.notifications). The excluded
    members are the sender, those who ignore the sender, and every member whose rules
    gave another outcome (their own Notification row, if it notified)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=255)
    stream_ordering = models.BigIntegerField(unique=True)
    thread_id = models.CharField(max_length=255)
    highlight = models.BooleanField()
    actions = models.JSONField()
    ts = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["room", "stream_ordering"], name="shared_notif_by_room"),
        ]

    def __str__(self) -> str:
        return f"{self.room_id} {self.event_id}"


class NotificationExclusion(models.Model):
    """A local member joined at a :class:`SharedNotification`'s position whom it does
    not stand for."""

    user_id = models.CharField(max_length=255)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    stream_ordering = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "stream_ordering"], name="notification_exclusion_unique"
            )
        ]


class MembershipSpan(models.Model):
    """A stretch of a local user's membership of a room, for the shared notifications it
    covers: joined by the event at ``start_ordering``, left by the one at ``end_ordering``
    (None: still joined). A shared notification at position p covers the span when
    start_ordering <= p < end_ordering: the events a membership change is evaluated for
    are evaluated with the membership it sets."""

    user_id = models.CharField(max_length=255)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    start_ordering = models.BigIntegerField()
    end_ordering = models.BigIntegerField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=["user_id", "room", "start_ordering"], name="span_by_user"),
        ]
        constraints = [
            # One open span per user and room.
            models.UniqueConstraint(
                fields=["user_id", "room"],
                condition=models.Q(end_ordering__isnull=True),
                name="span_one_open",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.room_id} [{self.start_ordering}, {self.end_ordering})"
