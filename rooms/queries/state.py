"""Room state as a reader may see it: current state, or the state when they left."""

from __future__ import annotations

from django.db.models import QuerySet

from matrixhs.errors import Forbidden, NotFound
from matrixhs.protocol.events import EventTypes, StateKey
from rooms.events import current_state_ids
from rooms.models import Event, RoomMembership
from rooms.queries.access import RoomAccess
from rooms.queries.format import EventRow, event_rows
from rooms.queries.timeline import parse_token, timeline_events
from rooms.queries.visibility import event_is_visible
from rooms.state import state_of_group


def visible_state_ids(
    access: RoomAccess, keys: list[StateKey] | None = None
) -> dict[StateKey, str]:
    """Current state for members and peekers; the state at their leave for those who left."""
    if access.left and access.membership_event is not None:
        return state_of_group(access.membership_event.state_group_id, keys)
    return current_state_ids(access.room, keys)


def state_events(access: RoomAccess, keys: list[StateKey] | None = None) -> list[EventRow]:
    ids = visible_state_ids(access, keys)
    return event_rows(Event.objects.filter(event_id__in=ids.values()), access.room)


def state_event(access: RoomAccess, event_type: str, state_key: str) -> EventRow:
    """Raises: NotFound: no such state in the room (as the reader sees it)."""
    events = state_events(access, [(event_type, state_key)])
    if not events:
        raise NotFound("Event not found.")
    return events[0]


def member_events(
    access: RoomAccess,
    user_id: str,
    at: str | None,
    membership: str | None,
    not_membership: str | None,
) -> list[EventRow]:
    """The m.room.member events of /members (at a token, filtered by membership).

    Raises:
        Forbidden: the reader could not see the room at ``at`` (history visibility).
    """
    if at is not None:
        events: QuerySet[Event] = timeline_events(access)
        position = parse_token(events, at)
        anchor = (
            events.filter(depth__lte=position.depth, stream_ordering__lte=position.stream)
            .order_by("-depth", "-stream_ordering")
            .first()
        )
        # Membership at a point is what the reader could have seen there: the event
        # the token points to must be visible to them (as for /messages).
        if anchor is not None and not event_is_visible(user_id, anchor, access.is_joined):
            raise Forbidden("You may not see the room's membership at that point")
        state = state_of_group(anchor.state_group_id if anchor else None)
        ids = [eid for (t, _), eid in state.items() if t == EventTypes.MEMBER]
    else:
        ids = [eid for (t, _), eid in visible_state_ids(access).items() if t == EventTypes.MEMBER]
    rows = event_rows(Event.objects.filter(event_id__in=ids), access.room)
    if membership is not None or not_membership is not None:
        rows = [
            e
            for e in rows
            if (membership is not None and e.membership == membership)
            or (not_membership is not None and e.membership != not_membership)
        ]
    return rows


def joined_members(access: RoomAccess) -> dict[str, dict[str, str]]:
    """/joined_members: display name and avatar of each joined user (when they have one)."""
    rows = RoomMembership.objects.filter(room=access.room, membership="join")
    members: dict[str, dict[str, str]] = {}
    for row in rows:
        profile = {"display_name": row.displayname, "avatar_url": row.avatar_url}
        members[row.user_id] = {k: v for k, v in profile.items() if v is not None}
    return members
