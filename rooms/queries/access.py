"""Who may read a room: access_*() guards that never reveal whether a room exists."""

from __future__ import annotations

from dataclasses import dataclass

from matrixhs import sql
from matrixhs.errors import Forbidden, NotFound
from matrixhs.protocol.events import EventTypes, Membership
from rooms.events import current_state_ids, load_pdus
from rooms.models import Event, Room, RoomMembership

WORLD_READABLE = "world_readable"


@dataclass(frozen=True)
class RoomAccess:
    """A reader's standing in a room.

    Attributes:
        room: the room.
        membership: the reader's current membership (None: never a member).
        membership_event: the event of that membership.
        peeking: reading a world-readable room without being joined.
    """

    room: Room
    membership: str | None
    membership_event: Event | None
    peeking: bool

    @property
    def is_joined(self) -> bool:
        return self.membership == Membership.JOIN

    @property
    def left(self) -> bool:
        """Was in the room and is no longer: reads stop at the leave."""
        return self.membership in (Membership.LEAVE, Membership.BAN) and not self.peeking


def history_visibility(room: Room) -> str:
    state = current_state_ids(room, [(EventTypes.HISTORY_VISIBILITY, "")])
    if not state:
        return "shared"
    pdu = load_pdus(state.values()).popitem()[1]
    value = pdu.get("content", {}).get("history_visibility")
    return value if isinstance(value, str) else "shared"


def access_room(user_id: str, room_id: str, allow_left: bool = True) -> RoomAccess:
    """The reader's access to a room they are in, were in, or may peek into.

    Raises:
        Forbidden: unknown room, or not a member now or before (and not world-readable).
    """
    found = sql.rows(_ACCESS_SQL, [user_id, room_id])
    if not found:
        raise Forbidden("You aren't a member of the room")
    values = found[0]
    room = sql.instance(Room, values[:_N_ROOM])
    membership, forgotten = values[_N_ROOM : _N_ROOM + 2]
    event_values = values[_N_ROOM + 2 :]
    event = sql.instance(Event, event_values) if event_values[0] is not None else None
    if event is not None and event.room_id == room.pk:
        event.room = room
    if membership == Membership.JOIN:
        return RoomAccess(room, membership, event, peeking=False)
    if history_visibility(room) == WORLD_READABLE:
        return RoomAccess(room, membership, None, peeking=True)
    if allow_left and membership in (Membership.LEAVE, Membership.BAN):
        if forgotten or event is None:
            raise Forbidden("You aren't a member of the room")
        return RoomAccess(room, membership, event, peeking=False)
    raise Forbidden("You aren't a member of the room")


_N_ROOM = sql.width(Room)
#: Every room endpoint starts here: the room, the reader's membership and its event in one
#: query, written out once.
_ACCESS_SQL = (
    f"SELECT {', '.join(sql.columns(Room, 'r'))}, m.membership, m.forgotten, "
    f"{', '.join(sql.columns(Event, 'e'))} FROM {Room._meta.db_table} r "
    f"LEFT JOIN {RoomMembership._meta.db_table} m ON m.room_id = r.id AND m.user_id = %s "
    f"LEFT JOIN {Event._meta.db_table} e ON e.event_id = m.event_id WHERE r.room_id = %s"
)


def access_joined_room(user_id: str, room_id: str) -> RoomAccess:
    """Raises: Forbidden: the user is not joined to the room (or it does not exist)."""
    access = access_room(user_id, room_id, allow_left=False)
    if not access.is_joined:
        raise Forbidden("You aren't joined to the room")
    return access


def access_event(access: RoomAccess, user_id: str, event_id: str) -> Event:
    """An event of the room the reader may see: not an outlier, visible by the history
    visibility rules, and not after the reader left.

    Raises:
        NotFound: no such event, or not one the reader may see (the two look the same).
    """
    from rooms.queries.visibility import event_is_visible

    event = (
        Event.objects.select_related("room")
        .filter(event_id=event_id, room=access.room, outlier=False)
        .first()
    )
    if event is None or not event_is_visible(user_id, event, access.is_joined):
        raise NotFound("Event not found")
    if access.left and access.membership_event is not None:
        if (event.stream_ordering or 0) > (access.membership_event.stream_ordering or 0):
            raise NotFound("Event not found")
    return event
