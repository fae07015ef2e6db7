"""Devices: create on login/register (or without a login, for a dehydrated device),
rename, delete (with their tokens)."""

from __future__ import annotations

import secrets
import string

from django.db import transaction

from accounts.models import Device, User
from e2ee.actions.devices import on_devices_deleted, record_device_list_change
from matrixhs.errors import Forbidden, InvalidParam
from matrixhs.notifier import notify_users_on_commit
from matrixhs.time import now_ms

MAX_DEVICE_ID_LENGTH = 255
MAX_DISPLAY_NAME_LENGTH = 1000


def wake_ended_sessions_on_commit(user: User) -> None:
    """Access tokens of ``user`` are being deleted: once that commits, wake the user's
    waiting /sync requests, which check their token again (sync/consumers.py) and end
    if theirs is gone."""
    notify_users_on_commit([user.user_id])


def generate_device_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(10))


def check_device_display_name(display_name: str | None) -> None:
    """Raises: InvalidParam: the name is too long."""
    if display_name is not None and len(display_name) > MAX_DISPLAY_NAME_LENGTH:
        raise InvalidParam(f"Device display name is longer than {MAX_DISPLAY_NAME_LENGTH}")


def check_device_id(device_id: str) -> None:
    """Raises: InvalidParam: the device ID is empty or too long."""
    if not device_id or len(device_id) > MAX_DEVICE_ID_LENGTH:
        raise InvalidParam("Invalid device_id")


def do_login_device(
    user: User,
    device_id: str | None,
    display_name: str | None,
    ip: str = "",
    user_agent: str = "",
) -> Device:
    """The device a login or registration signs in: a new one, or the one the client names.

    Re-using a device ID logs out the sessions that device had (spec: the old access
    tokens are invalidated); its display name only changes if a new one is given. The
    device counts as seen now, from ``ip``.

    The user's dehydrated device (MSC3814) cannot be signed in on: it would become a live
    session that GET /devices does not show.

    Raises:
        InvalidParam: the device ID or display name is too long.
        Forbidden: the device ID is that of the user's dehydrated device.
    """
    check_device_display_name(display_name)
    if device_id is not None:
        check_device_id(device_id)
    with transaction.atomic():
        if device_id is None:
            device_id = generate_device_id()
        now = now_ms()
        seen = {
            "last_seen_ts": now,
            "last_seen_ip": ip[:64],
            "last_seen_user_agent": user_agent[:512],
        }
        device, created = Device.objects.select_for_update().get_or_create(
            user=user,
            device_id=device_id,
            defaults={"display_name": display_name, "created_ts": now, **seen},
        )
        if not created:
            if Device.objects.filter(pk=device.pk, dehydrated__isnull=False).exists():
                raise Forbidden("This device ID is taken by the account's dehydrated device")
            device.access_tokens.all().delete()
            device.refresh_tokens.all().delete()
            wake_ended_sessions_on_commit(user)
            if display_name is not None:
                device.display_name = display_name
            for name, value in seen.items():
                setattr(device, name, value)
            device.save(update_fields=["display_name", *seen])
    return device


def do_create_device(user: User, device_id: str, display_name: str | None) -> Device:
    """A new device nobody is signed in on: no access token, never seen (a dehydrated
    device, see e2ee.actions.dehydrated_device).

    Raises:
        InvalidParam: the device ID or display name is invalid, or the user already has a
            device with this ID.
    """
    check_device_id(device_id)
    check_device_display_name(display_name)
    with transaction.atomic():
        device, created = Device.objects.get_or_create(
            user=user,
            device_id=device_id,
            defaults={"display_name": display_name, "created_ts": now_ms()},
        )
    if not created:
        raise InvalidParam(f"Device {device_id} already exists")
    return device


def do_rename_device(device: Device, display_name: str | None) -> None:
    check_device_display_name(display_name)
    with transaction.atomic():
        device.display_name = display_name
        device.save(update_fields=["display_name"])
        # Other users see device names in /keys/query: their clients ask again.
        record_device_list_change([device.user.user_id], device_ids=[device.device_id])


def do_delete_devices(user: User, device_ids: list[str]) -> int:
    """Delete devices and, with them, their access and refresh tokens and their E2EE
    keys and pending to-device messages (a device-list change when they had keys).

    Returns:
        How many devices were deleted (unknown IDs are ignored).
    """
    with transaction.atomic():
        on_devices_deleted(user, device_ids)
        _, deleted = Device.objects.filter(user=user, device_id__in=device_ids).delete()
        wake_ended_sessions_on_commit(user)
    return deleted.get(Device._meta.label, 0)
