"""The published room directory: who may list a room, and listing it."""

from __future__ import annotations

from matrixhs.errors import Forbidden
from matrixhs.protocol.events import CREATE_KEY, POWER_LEVELS_KEY
from matrixhs.protocol.power_levels import PowerLevels
from matrixhs.protocol.room_versions import get_room_version
from rooms.events import current_state_ids, load_pdus
from rooms.models import Room, RoomMembership


def check_can_edit_room(room: Room, user_id: str, event_type: str) -> None:
    """The user must be joined and allowed to send the state ``event_type``.

    Raises:
        Forbidden: not so.
    """
    if not RoomMembership.objects.filter(room=room, user_id=user_id, membership="join").exists():
        raise Forbidden("You are not in the room")
    rv = get_room_version(room.room_version)
    state = current_state_ids(room, [POWER_LEVELS_KEY, CREATE_KEY])
    pdus = load_pdus(state.values())
    levels = PowerLevels.from_state(
        pdus.get(state.get(POWER_LEVELS_KEY, "")), pdus.get(state.get(CREATE_KEY, "")), rv
    )
    if levels.user_level(user_id) < levels.send_level(event_type, is_state=True):
        raise Forbidden("Your power level is too low to change this")


def do_set_room_visibility(room: Room, public: bool) -> None:
    room.is_public = public
    room.save(update_fields=["is_public"])
