"""Dehydrated devices (MSC3814): a device a client leaves in its owner's account, with
its keys, so that other users keep encrypting to it while none of the owner's devices is
signed in. A later login rehydrates it: it reads the device's to-device messages (see
e2ee.queries.dehydrated_device_events) and then replaces or deletes it.

The device is an ordinary device row without access tokens, so key queries, claims and
to-device messages need nothing special; a ``DehydratedDevice`` row marks it and holds
the client's encrypted ``device_data``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from accounts.actions.devices import (
    check_device_display_name,
    check_device_id,
    do_create_device,
    do_delete_devices,
)
from accounts.models import User
from e2ee.actions.keys import KeyUpload, check_key_upload, do_upload_keys
from e2ee.models import DehydratedDevice
from matrixhs.errors import BadJson, JsonDict, NotFound
from matrixhs.time import now_ms


@dataclass(frozen=True)
class DehydratedDeviceUpload:
    """A checked ``PUT /dehydrated_device`` body."""

    device_id: str
    device_data: JsonDict
    display_name: str | None
    keys: KeyUpload


def check_dehydrated_device(user_id: str, body: JsonDict) -> DehydratedDeviceUpload:
    """Check a ``PUT /dehydrated_device`` body (shaped by its schema) of ``user_id``.

    The keys are checked as /keys/upload checks them, for the new device's ID.

    Raises:
        InvalidParam: the device ID or display name is invalid, or two fallback keys are
            for one algorithm.
        BadJson: ``device_data`` has no ``algorithm``, or a key has the wrong shape or
            names another user or device.
    """
    device_id = body["device_id"]
    check_device_id(device_id)
    display_name = body.get("initial_device_display_name")
    check_device_display_name(display_name)
    if not isinstance(body["device_data"].get("algorithm"), str):
        raise BadJson("device_data.algorithm must be a string")
    return DehydratedDeviceUpload(
        device_id=device_id,
        device_data=body["device_data"],
        display_name=display_name,
        keys=check_key_upload(user_id, device_id, body),
    )


def do_put_dehydrated_device(user: User, upload: DehydratedDeviceUpload) -> str:
    """Make ``upload`` the user's dehydrated device, with its keys, in place of the
    previous one (deleted with its keys and messages). All or nothing.

    Returns:
        The device ID.

    Raises:
        InvalidParam: the ID is that of another of the user's devices.
    """
    with transaction.atomic():
        # One dehydrated device per user: concurrent uploads take turns.
        User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()
        previous = _dehydrated_device_id(user)
        if previous is not None:
            do_delete_devices(user, [previous])
        device = do_create_device(user, upload.device_id, upload.display_name)
        DehydratedDevice.objects.create(
            user=user, device=device, device_data=upload.device_data, created_ts=now_ms()
        )
        do_upload_keys(user, device, upload.keys)
    return device.device_id


def do_delete_dehydrated_device(user: User) -> str:
    """Delete the user's dehydrated device with its keys and messages.

    Returns:
        Its device ID.

    Raises:
        NotFound: the user has no dehydrated device.
    """
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()
        device_id = _dehydrated_device_id(user)
        if device_id is None:
            raise NotFound("No dehydrated device available")
        do_delete_devices(user, [device_id])
    return device_id


def _dehydrated_device_id(user: User) -> str | None:
    return (
        DehydratedDevice.objects.filter(user=user)
        .values_list("device__device_id", flat=True)
        .first()
    )
