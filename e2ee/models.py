"""End-to-end encryption: device and cross-signing keys, signatures, one-time and fallback
keys, dehydrated devices, device-list changes, to-device messages and server-side key
backups.

Signed key objects are kept as the canonical JSON text they were signed as (``key_json``),
so what a client downloads is byte for byte what its owner uploaded.
"""

from __future__ import annotations

from django.db import models

from accounts.models import Device, User


class DeviceKeys(models.Model):
    """A device's identity keys (the ``device_keys`` of /keys/upload), self-signed."""

    device = models.OneToOneField(
        Device, on_delete=models.CASCADE, primary_key=True, related_name="e2ee_keys"
    )
    key_json = models.TextField()
    updated_ts = models.BigIntegerField()


class DehydratedDevice(models.Model):
    """A user's dehydrated device (MSC3814): a device row without access tokens, so keys,
    claims and to-device messages work as for any device, kept until a later login of
    its owner rehydrates it. At most one per user; it is left out of GET /devices."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="+")
    device = models.OneToOneField(Device, on_delete=models.CASCADE, related_name="dehydrated")
    #: The client's encrypted copy of the device's private keys; opaque to us but for
    #: its ``algorithm``.
    device_data = models.JSONField()
    created_ts = models.BigIntegerField()


class OneTimeKey(models.Model):
    """An unclaimed one-time key; claiming deletes the row (so it is handed out once)."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    algorithm = models.CharField(max_length=255)
    key_id = models.CharField(max_length=255)
    key_json = models.TextField()
    created_ts = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device", "algorithm", "key_id"], name="one_time_key_unique_id"
            )
        ]
        # Claims take the oldest key of a (device, algorithm): upload order is id order.
        indexes = [models.Index(fields=["device", "algorithm", "id"], name="one_time_key_claim")]


class FallbackKey(models.Model):
    """The fallback key of a device for one algorithm; reused until replaced."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    algorithm = models.CharField(max_length=255)
    key_id = models.CharField(max_length=255)
    key_json = models.TextField()
    #: Handed out by a claim since it was uploaded (the device should replace it).
    used = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "algorithm"], name="fallback_key_unique")
        ]


class CrossSigningKey(models.Model):
    """A user's current master, self-signing or user-signing key."""

    class KeyType(models.TextChoices):
        MASTER = "master"
        SELF_SIGNING = "self_signing"
        USER_SIGNING = "user_signing"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    key_type = models.CharField(max_length=16, choices=KeyType.choices)
    #: The unpadded-base64 Ed25519 public key; ``ed25519:<public_key>`` is the key ID.
    public_key = models.CharField(max_length=64)
    key_json = models.TextField()
    updated_ts = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key_type"], name="cross_signing_key_unique")
        ]


class CrossSigningSignature(models.Model):
    """A signature uploaded through /keys/signatures/upload, added to the signed key when
    it is downloaded (for the users allowed to see it)."""

    #: Who signed, and with which key (``ed25519:<device_id>`` or ``ed25519:<public key>``).
    signer_user_id = models.CharField(max_length=255)
    signing_key_id = models.CharField(max_length=255)
    #: The signed key: a device (its device ID) or a master key (its public key).
    target_user_id = models.CharField(max_length=255)
    target_key_id = models.CharField(max_length=255)
    signature = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["signer_user_id", "signing_key_id", "target_user_id", "target_key_id"],
                name="cross_signing_signature_unique",
            )
        ]
        indexes = [
            models.Index(fields=["target_user_id", "target_key_id"], name="signature_by_target")
        ]


class DeviceListChange(models.Model):
    """``user_id``'s devices or cross-signing keys changed at ``stream_id``.

    With ``observer_user_id`` set, only that user is to be told (their own user-signing
    key changed, or they signed ``user_id``'s master key); otherwise every user who shares
    a room with ``user_id`` is.
    """

    user_id = models.CharField(max_length=255)
    stream_id = models.BigIntegerField()
    observer_user_id = models.CharField(max_length=255, null=True, blank=True)
    #: The device that changed, for a change of one of our users' devices: other
    #: servers are sent an ``m.device_list_update`` for it (``stream_id`` is its ID).
    device_id = models.CharField(max_length=255, null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["stream_id"], name="device_list_change_by_stream"),
            models.Index(fields=["user_id", "stream_id"], name="device_list_change_by_user"),
        ]


class ToDeviceMessage(models.Model):
    """A send-to-device message waiting for its recipient device to acknowledge it."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    stream_id = models.BigIntegerField()
    sender = models.CharField(max_length=255)
    type = models.CharField(max_length=255)
    content = models.JSONField()

    class Meta:
        indexes = [models.Index(fields=["device", "stream_id"], name="to_device_inbox")]


class ToDeviceReceived(models.Model):
    """An ``m.direct_to_device`` EDU already delivered here: a server that sends it
    again (a retried transaction under a new ID) does not deliver it twice."""

    origin = models.CharField(max_length=255)
    message_id = models.CharField(max_length=255)
    received_ts = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["origin", "message_id"], name="to_device_received")
        ]


class ToDeviceTransaction(models.Model):
    """A /sendToDevice transaction already done: a retry gets the same answer."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    #: The sending device ("" for an access token without one).
    device_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=255)
    txn_id = models.CharField(max_length=255)
    response = models.JSONField(default=dict)
    created_ts = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "device_id", "event_type", "txn_id"], name="to_device_txn_unique"
            )
        ]


class RoomKeysVersion(models.Model):
    """A version of a user's server-side key backup. Deleted versions stay as tombstones,
    so version numbers are never reused."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    version = models.BigIntegerField()
    algorithm = models.CharField(max_length=255)
    auth_data = models.JSONField()
    #: Bumped whenever the stored keys change; clients compare it to spot other writers.
    etag = models.BigIntegerField(default=0)
    deleted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "version"], name="room_keys_version_unique")
        ]


class RoomKey(models.Model):
    """One backed-up (encrypted) megolm session key."""

    backup = models.ForeignKey(RoomKeysVersion, on_delete=models.CASCADE, related_name="keys")
    room_id = models.CharField(max_length=255)
    session_id = models.CharField(max_length=255)
    first_message_index = models.BigIntegerField()
    forwarded_count = models.BigIntegerField()
    is_verified = models.BooleanField()
    session_data = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["backup", "room_id", "session_id"], name="room_key_unique_session"
            )
        ]


class RemoteDeviceList(models.Model):
    """The devices and cross-signing keys of a user of another server, as their server
    last told us (e2ee.device_cache): kept while they share a room with our users, and
    updated by the device list EDUs their server sends."""

    user_id = models.CharField(max_length=255, unique=True)
    #: The position of the list's last change on the user's server (``stream_id``).
    stream_id = models.BigIntegerField()
    #: Recent ``stream_id``s applied, so that an update naming them as ``prev_id`` follows.
    seen_stream_ids = models.JSONField(default=list)
    #: {device_id: signed device keys, with ``unsigned.device_display_name``}.
    device_keys = models.JSONField(default=dict)
    master_key = models.JSONField(null=True)
    self_signing_key = models.JSONField(null=True)
    #: Our events stream position when it was fetched: the list is current only while
    #: the user has been in a room with one of ours since then.
    fetched_position = models.BigIntegerField()
    #: An update did not follow on (a gap): fetch it again before using it.
    stale = models.BooleanField(default=False)
