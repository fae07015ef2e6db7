"""Blocked rooms: an operator keeps local users out of a room (Synapse's admin API)."""

from __future__ import annotations

from django.db import transaction

from matrixhs.errors import Forbidden
from matrixhs.time import now_ms
from rooms.models import BlockedRoom


def check_room_not_blocked(room_id: str) -> None:
    """Raises: Forbidden: an operator blocked the room."""
    if BlockedRoom.objects.filter(room_id=room_id).exists():
        raise Forbidden("This room has been blocked on this server")


def do_block_room(room_id: str, blocked_by: str) -> None:
    """Block a room (blocking again keeps who blocked it first)."""
    with transaction.atomic():
        BlockedRoom.objects.get_or_create(
            room_id=room_id, defaults={"blocked_by": blocked_by, "blocked_ts": now_ms()}
        )


def do_unblock_room(room_id: str) -> bool:
    """True if the room was blocked."""
    deleted, _ = BlockedRoom.objects.filter(room_id=room_id).delete()
    return bool(deleted)
