"""Receipts and read markers."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from accounts.actions.account_data import do_set_account_data
from accounts.models import User
from matrixhs.errors import InvalidParam, NotFound
from matrixhs.notifier import notify_users_on_commit
from matrixhs.streams import Stream, next_position
from matrixhs.time import now_ms
from rooms.models import Event, Receipt, Room, RoomMembership

RECEIPT_TYPES = ("m.read", "m.read.private")
FULLY_READ = "m.fully_read"


def _target(room: Room, event_id: str) -> Event:
    event = Event.objects.filter(room=room, event_id=event_id, outlier=False).first()
    if event is None:
        raise NotFound("Event not found")
    return event


def check_thread_id(thread_id: object) -> str:
    """Raises: InvalidParam: not "main" or an event ID."""
    if thread_id is None:
        return ""
    if not isinstance(thread_id, str) or not (thread_id == "main" or thread_id.startswith("$")):
        raise InvalidParam("thread_id must be 'main' or an event ID")
    return thread_id


def do_set_receipt(
    user: User, room: Room, receipt_type: str, event_id: str, thread_id: str
) -> None:
    """Record a receipt; it never moves backwards within a (type, thread).

    Raises:
        MatrixError: 400 M_INVALID_PARAM for unknown receipt types.
        NotFound: the event is not in the room.
    """
    if receipt_type == FULLY_READ:
        do_set_fully_read(user, room, event_id)
        return
    if receipt_type not in RECEIPT_TYPES:
        raise InvalidParam(f"Unknown receipt type {receipt_type}")
    target = _target(room, event_id)
    with transaction.atomic():
        existing = (
            Receipt.objects.select_for_update()
            .filter(room=room, user_id=user.user_id, receipt_type=receipt_type, thread_id=thread_id)
            .first()
        )
        if existing is not None:
            old = (
                Event.objects.filter(event_id=existing.event_id)
                .values_list("stream_ordering", flat=True)
                .first()
            )
            if old is not None and (target.stream_ordering or 0) <= old:
                return
        Receipt.objects.update_or_create(
            room=room,
            user_id=user.user_id,
            receipt_type=receipt_type,
            thread_id=thread_id,
            defaults={
                "event_id": event_id,
                "ts": now_ms(),
                "stream_id": next_position(Stream.RECEIPTS),
            },
        )
        if receipt_type == "m.read":
            suffix = f":{settings.MATRIXHS_SERVER_NAME}"
            members = RoomMembership.objects.filter(room=room, membership="join").values_list(
                "user_id", flat=True
            )
            notify_users_on_commit(m for m in members if m.endswith(suffix))
        else:
            notify_users_on_commit([user.user_id])


def do_set_fully_read(user: User, room: Room, event_id: str) -> None:
    """The m.fully_read marker is room account data the server manages."""
    _target(room, event_id)
    do_set_account_data(user, FULLY_READ, {"event_id": event_id}, room.room_id)
