"""Send-to-device messages (spec "Send-to-Device messaging").

A message to a local device waits in its inbox until the device acknowledges it (its next
/sync names a later position); messages for other servers are queued for them as
``m.direct_to_device`` EDUs (federation.actions.outbound), and theirs for our users
arrive the same way (``deliver_remote_to_device``).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.models import Device, User
from e2ee.models import ToDeviceMessage, ToDeviceReceived, ToDeviceTransaction
from federation.actions.outbound import enqueue_edu
from matrixhs.errors import BadJson, InvalidParam, JsonDict, TooLarge
from matrixhs.notifier import notify_users_on_commit
from matrixhs.protocol.ids import InvalidIdentifier, parse_user_id, server_name_of
from matrixhs.streams import Stream, next_position
from matrixhs.time import now_ms

#: Each message must fit in a federation EDU (Synapse's limit).
MAX_CONTENT_BYTES = 65536
MAX_NAME_LENGTH = 255
ALL_DEVICES = "*"

#: {user_id: {device_id or "*": content}}
Messages = dict[str, dict[str, JsonDict]]


def check_to_device_request(event_type: str, txn_id: str, messages: Any) -> Messages:
    """Check a /sendToDevice request; messages to invalid user IDs are dropped.

    Raises:
        InvalidParam: the event type or transaction ID is too long.
        BadJson: ``messages`` is not a map of user ID to device ID to object.
        TooLarge: a message is over 64 KiB.
    """
    if len(event_type) > MAX_NAME_LENGTH or len(txn_id) > MAX_NAME_LENGTH:
        raise InvalidParam(f"Event types and transaction IDs are at most {MAX_NAME_LENGTH} long")
    if not isinstance(messages, dict):
        raise BadJson("messages must be an object")
    checked: Messages = {}
    for user_id, by_device in messages.items():
        if not isinstance(by_device, dict) or not all(
            isinstance(content, dict) for content in by_device.values()
        ):
            raise BadJson(f"messages.{user_id} must map device IDs to objects")
        for device_id, content in by_device.items():
            size = len(json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode())
            if size > MAX_CONTENT_BYTES:
                raise TooLarge(
                    f"The message for {user_id} {device_id} is over {MAX_CONTENT_BYTES} bytes"
                )
        try:
            parse_user_id(user_id)
        except InvalidIdentifier:
            continue
        if by_device:
            checked[user_id] = by_device
    return checked


def do_send_to_device(
    sender: User, sender_device_id: str | None, event_type: str, txn_id: str, messages: Messages
) -> JsonDict:
    """Queue ``messages`` for their devices, once per transaction ID of the sending device.

    Local messages go to the inboxes of the devices that exist (``*``: all the user's
    devices but those addressed by ID); the recipients are woken after commit.

    Returns:
        The response body (the stored one when the transaction was already done).
    """
    with transaction.atomic():
        done = _record_transaction(sender, sender_device_id or "", event_type, txn_id)
        if done is not None:
            return done
        here = settings.MATRIXHS_SERVER_NAME
        local = {u: m for u, m in messages.items() if server_name_of(u) == here}
        inbox = _local_deliveries(local)
        remote = {u: m for u, m in messages.items() if u not in local}
        _queue_remote(sender, event_type, remote)
        if not inbox:
            return {}
        position = next_position(Stream.TO_DEVICE)
        ToDeviceMessage.objects.bulk_create(
            ToDeviceMessage(
                device_id=device_pk,
                stream_id=position,
                sender=sender.user_id,
                type=event_type,
                content=content,
            )
            for device_pk, _, content in inbox
        )
        notify_users_on_commit({user_id for _, user_id, _ in inbox})
    return {}


def _record_transaction(
    user: User, device_id: str, event_type: str, txn_id: str
) -> JsonDict | None:
    """Claim the transaction ID; returns the stored response if it was done before."""
    try:
        with transaction.atomic():
            ToDeviceTransaction.objects.create(
                user=user,
                device_id=device_id,
                event_type=event_type,
                txn_id=txn_id,
                response={},
                created_ts=now_ms(),
            )
    except IntegrityError:
        row = ToDeviceTransaction.objects.get(
            user=user, device_id=device_id, event_type=event_type, txn_id=txn_id
        )
        return dict(row.response)
    return None


def _local_deliveries(local: Messages) -> list[tuple[int, str, JsonDict]]:
    """(device pk, user ID, content) for each existing local device addressed (one query)."""
    devices: dict[str, dict[str, int]] = {}
    rows = Device.objects.filter(user__user_id__in=list(local)).values_list(
        "user__user_id", "device_id", "pk"
    )
    for user_id, device_id, pk in rows:
        devices.setdefault(user_id, {})[device_id] = pk
    deliveries = []
    for user_id, by_device in local.items():
        known = devices.get(user_id, {})
        everyone = by_device.get(ALL_DEVICES)
        for device_id, pk in known.items():
            content = by_device.get(device_id, everyone)
            if content is not None:
                deliveries.append((pk, user_id, content))
    return deliveries


def _queue_remote(sender: User, event_type: str, remote: Messages) -> None:
    """One ``m.direct_to_device`` EDU per destination, sent once the caller commits."""
    by_server: dict[str, Messages] = {}
    for user_id, by_device in remote.items():
        by_server.setdefault(server_name_of(user_id), {})[user_id] = by_device
    for destination, messages in sorted(by_server.items()):
        content = {
            "sender": sender.user_id,
            "type": event_type,
            "message_id": secrets.token_urlsafe(16),
            "messages": messages,
        }
        enqueue_edu([destination], "m.direct_to_device", content)


def deliver_remote_to_device(
    origin: str, sender: str, event_type: str, message_id: str, messages: Messages
) -> int:
    """An ``m.direct_to_device`` EDU from ``origin``: its messages for our users go to
    their devices' inboxes, once per (origin, message_id). Returns how many were delivered.
    """
    here = settings.MATRIXHS_SERVER_NAME
    local = {u: m for u, m in messages.items() if isinstance(m, dict) and server_name_of(u) == here}
    with transaction.atomic():
        try:
            with transaction.atomic():
                ToDeviceReceived.objects.create(
                    origin=origin, message_id=message_id, received_ts=now_ms()
                )
        except IntegrityError:
            return 0
        inbox = [(pk, u, c) for pk, u, c in _local_deliveries(local) if isinstance(c, dict)]
        if not inbox:
            return 0
        position = next_position(Stream.TO_DEVICE)
        ToDeviceMessage.objects.bulk_create(
            ToDeviceMessage(
                device_id=device_pk,
                stream_id=position,
                sender=sender,
                type=event_type,
                content=content,
            )
            for device_pk, _, content in inbox
        )
        notify_users_on_commit({user_id for _, user_id, _ in inbox})
    return len(inbox)


def delete_to_device_up_to(user: User, device_id: str, position: int) -> int:
    """The device acknowledged its messages up to ``position`` (the to-device part of the
    ``since`` token of its /sync): delete them. Returns how many were deleted."""
    with transaction.atomic():
        deleted, _ = ToDeviceMessage.objects.filter(
            device__user=user, device__device_id=device_id, stream_id__lte=position
        ).delete()
    return deleted
