"""EDUs other servers send us in their transactions: typing, read receipts, to-device
messages, presence, device list and cross-signing key changes. Each is about users of the sending
server only, and about rooms where they are joined; anything else in one is ignored (an
EDU gets no answer, so a bad one is logged and dropped, never an error for the whole
transaction)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

from e2ee import device_cache
from e2ee.actions.devices import record_device_list_change
from e2ee.actions.to_device import deliver_remote_to_device
from federation.queries.graph import acl_allows
from matrixhs.protocol.ids import server_name_of
from rooms.actions.receipts import check_thread_id, receive_remote_receipt
from rooms.models import Room, RoomMembership
from sync.actions import do_set_typing
from sync.presence import MAX_STATUS_MSG_LENGTH, receive_remote_presence
from sync.presence import STATES as PRESENCE_STATES

logger = logging.getLogger(__name__)

#: How long a remote user's typing lasts unless their server says it stopped.
REMOTE_TYPING_TIMEOUT_MS = 30_000


class Ignored(Exception):
    """An EDU (or part of one) that is not for us to apply."""


def receive_edus(origin: str, edus: list[Any]) -> None:
    """Apply the EDUs of a transaction from ``origin``, in order."""
    for edu in edus:
        if not isinstance(edu, dict) or not isinstance(edu.get("content"), dict):
            continue
        handler = HANDLERS.get(edu.get("edu_type"))  # type: ignore[arg-type]
        if handler is None:
            continue
        try:
            handler(origin, edu["content"])
        except Ignored as exc:
            logger.info("Ignored an %s EDU from %s: %s", edu.get("edu_type"), origin, exc)


def _own_user(origin: str, user_id: Any) -> str:
    if not isinstance(user_id, str) or ":" not in user_id or server_name_of(user_id) != origin:
        raise Ignored(f"{user_id!r} is not a user of {origin}")
    return user_id


def _joined_room(origin: str, room_id: Any, user_id: str) -> Room:
    room = Room.objects.filter(room_id=room_id).first() if isinstance(room_id, str) else None
    if room is None:
        raise Ignored(f"unknown room {room_id!r}")
    if not RoomMembership.objects.filter(room=room, user_id=user_id, membership="join").exists():
        raise Ignored(f"{user_id} is not joined to {room_id}")
    if not acl_allows(room, origin):
        raise Ignored(f"{origin} is denied by the server ACL of {room_id}")
    return room


def _local_members(room: Room) -> list[str]:
    suffix = f":{settings.MATRIXHS_SERVER_NAME}"
    members = RoomMembership.objects.filter(room=room, membership="join").values_list(
        "user_id", flat=True
    )
    return [m for m in members if m.endswith(suffix)]


def _typing(origin: str, content: dict[str, Any]) -> None:
    user_id = _own_user(origin, content.get("user_id"))
    room = _joined_room(origin, content.get("room_id"), user_id)
    typing = content.get("typing")
    if not isinstance(typing, bool):
        raise Ignored("typing must be a boolean")
    do_set_typing(room.room_id, user_id, typing, REMOTE_TYPING_TIMEOUT_MS, _local_members(room))


def _receipts(origin: str, content: dict[str, Any]) -> None:
    for room_id, by_type in content.items():
        if not isinstance(by_type, dict) or not isinstance(by_type.get("m.read"), dict):
            continue
        for user_id, receipt in by_type["m.read"].items():
            try:
                _receipt(origin, room_id, user_id, receipt)
            except Ignored as exc:
                logger.info("Ignored a receipt from %s: %s", origin, exc)


def _receipt(origin: str, room_id: str, user_id: str, receipt: Any) -> None:
    user_id = _own_user(origin, user_id)
    room = _joined_room(origin, room_id, user_id)
    if not isinstance(receipt, dict) or not isinstance(receipt.get("event_ids"), list):
        raise Ignored("a receipt needs event_ids")
    data = receipt.get("data") if isinstance(receipt.get("data"), dict) else {}
    ts = data.get("ts")
    try:
        thread_id = check_thread_id(data.get("thread_id"))
    except Exception as exc:
        raise Ignored("bad thread_id") from exc
    for event_id in receipt["event_ids"][:10]:
        if isinstance(event_id, str):
            receive_remote_receipt(
                room, user_id, event_id, thread_id, ts if isinstance(ts, int) else 0
            )


def _device_list_update(origin: str, content: dict[str, Any]) -> None:
    """``m.device_list_update``: one of the user's devices changed. Applied to their
    kept list (e2ee.device_cache), and our users who share a room with them are told."""
    user_id = _sharing_user(origin, content)
    with transaction.atomic():
        device_cache.apply_device_list_update(user_id, content)
        record_device_list_change([user_id])


def _signing_key_update(origin: str, content: dict[str, Any]) -> None:
    """``m.signing_key_update``: the user's cross-signing keys changed."""
    user_id = _sharing_user(origin, content)
    with transaction.atomic():
        device_cache.apply_signing_key_update(user_id, content)
        record_device_list_change([user_id])


def _sharing_user(origin: str, content: dict[str, Any]) -> str:
    user_id = _own_user(origin, content.get("user_id"))
    if not RoomMembership.objects.filter(user_id=user_id, membership="join").exists():
        device_cache.forget(user_id)
        raise Ignored(f"{user_id} shares no room with us")
    return user_id


def _presence(origin: str, content: dict[str, Any]) -> None:
    pushes = content.get("push")
    if not isinstance(pushes, list):
        raise Ignored("push must be a list")
    for push in pushes[:1000]:
        if not isinstance(push, dict):
            continue
        user_id = push.get("user_id")
        if not isinstance(user_id, str) or ":" not in user_id:
            continue
        if server_name_of(user_id) != origin or push.get("presence") not in PRESENCE_STATES:
            continue
        status_msg = push.get("status_msg")
        if isinstance(status_msg, str) and len(status_msg) > MAX_STATUS_MSG_LENGTH:
            continue
        if RoomMembership.objects.filter(user_id=user_id, membership="join").exists():
            receive_remote_presence(user_id, push)


def _to_device(origin: str, content: dict[str, Any]) -> None:
    sender = _own_user(origin, content.get("sender"))
    event_type, message_id = content.get("type"), content.get("message_id")
    messages = content.get("messages")
    if not isinstance(event_type, str) or not isinstance(message_id, str):
        raise Ignored("type and message_id must be strings")
    if not isinstance(messages, dict):
        raise Ignored("messages must be an object")
    deliver_remote_to_device(origin, sender, event_type, message_id[:255], messages)


HANDLERS: dict[str, Callable[[str, dict[str, Any]], None]] = {
    "m.typing": _typing,
    "m.receipt": _receipts,
    "m.direct_to_device": _to_device,
    "m.device_list_update": _device_list_update,
    "m.presence": _presence,
    "m.signing_key_update": _signing_key_update,
}
