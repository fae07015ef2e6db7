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
from e2ee.queries import is_local, local_keys_for_server, local_signing_keys
from federation.actions.outbound import enqueue_edu, servers_sharing_rooms
from matrixhs.errors import JsonDict
from matrixhs.notifier import notify_users_on_commit
from matrixhs.streams import Stream, next_position
from rooms.models import RoomMembership


def record_device_list_change(
    user_ids: Iterable[str],
    observer_user_id: str | None = None,
    device_ids: Iterable[str] = (),
    deleted: bool = False,
) -> int:
    """Record, at a new device-list stream position, that ``user_ids`` changed.

    Call it inside the writing transaction, after the other writes (see matrixhs.streams).
    Without ``observer_user_id`` the change is for everyone who shares a room with the
    users, and our users among them are woken once the transaction commits; with it,
    only that user is to hear about it (and is woken, with the users themselves).

    ``device_ids``: for a change of one local user's devices, the devices that changed;
    each gets a position of its own, and the other servers sharing a room with the user
    are sent an ``m.device_list_update`` for it (``deleted``: the devices are being
    deleted).

    Returns:
        The (last) stream position (0 when ``user_ids`` is empty: nothing is recorded).
    """
    targets = sorted(set(user_ids))
    if not targets:
        return 0
    devices = sorted(set(device_ids)) if observer_user_id is None and len(targets) == 1 else []
    if devices:
        return _record_device_changes(targets[0], devices, deleted)
    position = next_position(Stream.DEVICE_LISTS)
    DeviceListChange.objects.bulk_create(
        DeviceListChange(user_id=user_id, stream_id=position, observer_user_id=observer_user_id)
        for user_id in targets
    )
    if observer_user_id is None:
        notify_users_on_commit(_local_room_mates(targets))
    notify_users_on_commit([*targets, *([observer_user_id] if observer_user_id else [])])
    return position


def _record_device_changes(user_id: str, device_ids: list[str], deleted: bool) -> int:
    previous = (
        DeviceListChange.objects.filter(user_id=user_id, device_id__isnull=False)
        .order_by("-stream_id")
        .values_list("stream_id", flat=True)
        .first()
    )
    servers = servers_sharing_rooms([user_id]) if is_local(user_id) else set()
    keys: JsonDict = {}
    if servers and not deleted:
        keys = local_keys_for_server({user_id: device_ids})["device_keys"][user_id]
    position = 0
    for device_id in device_ids:
        position = next_position(Stream.DEVICE_LISTS)
        DeviceListChange.objects.create(user_id=user_id, stream_id=position, device_id=device_id)
        if servers:
            edu: JsonDict = {
                "user_id": user_id,
                "device_id": device_id,
                "stream_id": position,
                "prev_id": [previous] if previous else [],
            }
            device_keys = keys.get(device_id)
            if device_keys is None:
                edu["deleted"] = True
            else:
                name = device_keys.pop("unsigned", {}).get("device_display_name")
                edu["keys"] = device_keys
                if name:
                    edu["device_display_name"] = name
            enqueue_edu(servers, "m.device_list_update", edu)
        previous = position
    notify_users_on_commit(_local_room_mates([user_id]) | {user_id})
    return position


def _sharing_rooms(user_ids: list[str]) -> set[str]:
    """Everyone joined to a room one of ``user_ids`` is joined to."""
    rooms = RoomMembership.objects.filter(user_id__in=user_ids, membership="join").values("room_id")
    return set(
        RoomMembership.objects.filter(room_id__in=rooms, membership="join")
        .values_list("user_id", flat=True)
        .distinct()
    )


def _local_room_mates(user_ids: list[str]) -> set[str]:
    return {u for u in _sharing_rooms(user_ids) if is_local(u)}


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
        record_device_list_change([user.user_id], device_ids=device_ids, deleted=True)


def share_signing_keys(user_id: str) -> None:
    """Send the user's new master and self-signing keys to the other servers sharing a
    room with them (``m.signing_key_update``)."""
    servers = servers_sharing_rooms([user_id])
    if servers:
        enqueue_edu(
            servers, "m.signing_key_update", {"user_id": user_id, **local_signing_keys(user_id)}
        )
