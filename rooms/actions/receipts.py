"""Receipts and read markers."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from accounts.actions.account_data import do_set_account_data
from accounts.models import User
from federation.actions.outbound import share_receipt
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
    ts = now_ms()
    with transaction.atomic():
        if not _store(room, user.user_id, receipt_type, target, thread_id, ts):
            return
        if receipt_type == "m.read":
            _notify_room(room)
            share_receipt(room, user.user_id, event_id, thread_id, ts)
        else:
            notify_users_on_commit([user.user_id])


def receive_remote_receipt(
    room: Room, user_id: str, event_id: str, thread_id: str, ts: int
) -> bool:
    """A public read receipt of another server's user (an ``m.receipt`` EDU); ignored
    for an event we do not have. Returns whether it was recorded."""
    target = Event.objects.filter(room=room, event_id=event_id, outlier=False).first()
    if target is None:
        return False
    with transaction.atomic():
        if not _store(room, user_id, "m.read", target, thread_id, ts):
            return False
        _notify_room(room)
    return True


def _store(
    room: Room, user_id: str, receipt_type: str, target: Event, thread_id: str, ts: int
) -> bool:
    """Record the receipt unless it would move backwards; returns whether it did."""
    existing = (
        Receipt.objects.select_for_update()
        .filter(room=room, user_id=user_id, receipt_type=receipt_type, thread_id=thread_id)
        .first()
    )
    if existing is not None:
        old = (
            Event.objects.filter(event_id=existing.event_id)
            .values_list("stream_ordering", flat=True)
            .first()
        )
        if old is not None and (target.stream_ordering or 0) <= old:
            return False
    Receipt.objects.update_or_create(
        room=room,
        user_id=user_id,
        receipt_type=receipt_type,
        thread_id=thread_id,
        defaults={
            "event_id": target.event_id,
            "ts": ts,
            "stream_id": next_position(Stream.RECEIPTS),
        },
    )
    return True


def _notify_room(room: Room) -> None:
    suffix = f":{settings.MATRIXHS_SERVER_NAME}"
    members = RoomMembership.objects.filter(room=room, membership="join").values_list(
        "user_id", flat=True
    )
    notify_users_on_commit(m for m in members if m.endswith(suffix))


def do_set_fully_read(user: User, room: Room, event_id: str) -> None:
    """The m.fully_read marker is room account data the server manages."""
    _target(room, event_id)
    do_set_account_data(user, FULLY_READ, {"event_id": event_id}, room.room_id)
