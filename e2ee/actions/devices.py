"""Device lists: record that a user's devices or cross-signing keys changed, and clean up
the E2EE state of deleted devices."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q

from accounts.models import Device, User
from e2ee.models import (
    CrossSigningSignature,
    DeviceKeys,
    DeviceListChange,
    FallbackKey,
    OneTimeKey,
    ToDeviceMessage,
    ToDeviceTransaction,
)
from matrixhs.notifier import notify_users_on_commit
from matrixhs.streams import Stream, next_position


def record_device_list_change(user_ids: Iterable[str], observer_user_id: str | None = None) -> int:
    """Record, at a new device-list stream position, that ``user_ids`` changed.

    Call it inside the writing transaction, after the other writes (see matrixhs.streams).
    Without ``observer_user_id`` the change is for everyone who shares a room with the
    users; with it, only that user is to hear about it. The users themselves (and the
    observer) are woken once the transaction commits; waking the users who share rooms
    with them is for whoever knows the rooms.

    Returns:
        The stream position (0 when ``user_ids`` is empty: nothing is recorded).
    """
    targets = sorted(set(user_ids))
    if not targets:
        return 0
    position = next_position(Stream.DEVICE_LISTS)
    DeviceListChange.objects.bulk_create(
        DeviceListChange(user_id=user_id, stream_id=position, observer_user_id=observer_user_id)
        for user_id in targets
    )
    notify_users_on_commit([*targets, *([observer_user_id] if observer_user_id else [])])
    return position


def on_devices_deleted(user: User, device_ids: list[str]) -> None:
    """Drop the E2EE state of devices about to be deleted: their identity, one-time and
    fallback keys, pending to-device messages, transaction IDs and the signatures made of
    or by them. When one of them had identity keys, the user's device list changed.

    Call it inside the deleting transaction, before the devices are deleted.
    """
    devices = Device.objects.filter(user=user, device_id__in=device_ids)
    had_keys, _ = DeviceKeys.objects.filter(device__in=devices).delete()
    OneTimeKey.objects.filter(device__in=devices).delete()
    FallbackKey.objects.filter(device__in=devices).delete()
    ToDeviceMessage.objects.filter(device__in=devices).delete()
    ToDeviceTransaction.objects.filter(user=user, device_id__in=device_ids).delete()
    CrossSigningSignature.objects.filter(
        Q(target_user_id=user.user_id, target_key_id__in=device_ids)
        | Q(
            signer_user_id=user.user_id,
            signing_key_id__in=[f"ed25519:{device_id}" for device_id in device_ids],
        )
    ).delete()
    if had_keys:
        record_device_list_change([user.user_id])
