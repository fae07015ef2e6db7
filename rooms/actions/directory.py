"""The published room directory: who may list a room, and listing it."""

from __future__ import annotations

from matrixhs.errors import Forbidden
from rooms.events import current_power_levels
from rooms.models import Room, RoomMembership


def check_can_edit_room(room: Room, user_id: str, event_type: str) -> None:
    """The user must be joined and allowed to send the state ``event_type``.

    Raises:
        Forbidden: not so.
    """
    if not RoomMembership.objects.filter(room=room, user_id=user_id, membership="join").exists():
        raise Forbidden("You are not in the room")
    levels = current_power_levels(room)
    if levels.user_level(user_id) < levels.send_level(event_type, is_state=True):
        raise Forbidden("Your power level is too low to change this")


def do_set_room_visibility(room: Room, public: bool) -> None:
    room.is_public = public
    room.save(update_fields=["is_public"])
