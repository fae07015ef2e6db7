"""History visibility (spec "Room history visibility"), applied to every event served.

For each event, the room's ``m.room.history_visibility`` and the reader's membership
*at that event* decide:

- the reader was joined at the event: visible;
- ``world_readable``: visible;
- ``shared``: visible unless the reader is not joined now (peeking or gone);
- ``invited``: visible if the reader was invited (or joined) at the event;
- ``joined``: visible only if joined at the event.

A reader always sees events about their own membership. State is read from each
event's state group ("state before the event") in one batched query.

What users the reader ignores send (spec "Ignoring Users") is left out by every reader of
events with :func:`from_ignored` / :func:`without_ignored`, the list read once a request
(:func:`with_ignored`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

from django.db.models import Q

from accounts.queries import ignored_users
from matrixhs.protocol.events import EventTypes, Membership
from rooms.events import load_pdus
from rooms.models import Event
from rooms.state import states_of_groups

if TYPE_CHECKING:
    from rooms.queries.format import Viewer

HISTORY_KEY = (EventTypes.HISTORY_VISIBILITY, "")


def filter_visible(
    user_id: str, events: Sequence[Event], joined_now: bool | AbstractSet[int]
) -> list[Event]:
    """The events ``user_id`` may see, in the given order (rejected/soft-failed dropped).

    ``joined_now``: whether the reader is joined to the room now, or, for events of
    several rooms, the pks of the rooms the reader is joined to now.
    """
    events = [e for e in events if e.rejected_reason is None and not e.soft_failed]
    if not events:
        return []
    member_key = (EventTypes.MEMBER, user_id)
    groups = {e.state_group_before_id for e in events if e.state_group_before_id is not None}
    states = states_of_groups(groups, [HISTORY_KEY, member_key])
    wanted = {eid for state in states.values() for eid in state.values()}
    pdus = load_pdus(wanted)

    def content_field(event_id: str | None, field: str) -> str | None:
        value = pdus.get(event_id or "", {}).get("content", {}).get(field)
        return value if isinstance(value, str) else None

    visible = []
    for event in events:
        if event.type == EventTypes.MEMBER and event.state_key == user_id:
            visible.append(event)
            continue
        state = states.get(event.state_group_before_id or -1, {})
        visibility = content_field(state.get(HISTORY_KEY), "history_visibility") or "shared"
        membership = content_field(state.get(member_key), "membership")
        joined = joined_now if isinstance(joined_now, bool) else event.room_id in joined_now
        if _allowed(visibility, membership, joined):
            visible.append(event)
    return visible


def _allowed(visibility: str, membership: str | None, joined_now: bool) -> bool:
    if membership == Membership.JOIN or visibility == "world_readable":
        return True
    if visibility == "shared":
        return joined_now
    if visibility == "invited":
        return membership == Membership.INVITE
    return False


def from_ignored(ignored: AbstractSet[str]) -> Q:
    """Events of a reader's ignored users that they are not sent (spec "Ignoring Users"):
    every non-state event of those senders. State events still go out, so that the room's
    name or members do not look different because of who is ignored."""
    return Q(sender__in=sorted(ignored), state_key__isnull=True)


def sent_by_ignored(event: Event, ignored: AbstractSet[str]) -> bool:
    """Whether :func:`from_ignored` matches ``event``."""
    return event.state_key is None and event.sender in ignored


def without_ignored(events: Sequence[Event], ignored: AbstractSet[str]) -> list[Event]:
    """``events`` less those :func:`from_ignored` matches, in the given order."""
    if not ignored:
        return list(events)
    return [e for e in events if not sent_by_ignored(e, ignored)]


def ignored_by(viewer: Viewer) -> frozenset[str]:
    """The users ``viewer`` ignores: as the caller read them, or read now (one query)."""
    return viewer.ignored if viewer.ignored is not None else ignored_users(viewer.user_id)


def with_ignored(viewer: Viewer) -> Viewer:
    """``viewer`` with their ignored users read, for a request that filters by them in
    several places (the list, its events' bundled aggregations)."""
    if viewer.ignored is not None:
        return viewer
    return dataclasses.replace(viewer, ignored=ignored_users(viewer.user_id))


def event_is_visible(user_id: str, event: Event, joined_now: bool) -> bool:
    return bool(filter_visible(user_id, [event], joined_now))
