"""Local users' membership spans (push.models.MembershipSpan): which shared notifications
stand for whom.

rooms/events.py calls :func:`do_track_memberships` wherever it moves the room's current
memberships, in the same transaction and before the event is evaluated for push rules,
so that a span and the members an event is evaluated for agree: a span opens at the
event that joins the user and closes at the one that makes them leave (or be kicked,
banned, or removed from the state).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from django.conf import settings

from matrixhs.streams import Stream, current_position
from push.models import MembershipSpan
from rooms.models import Room


def do_track_memberships(room: Room, changes: Mapping[str, tuple[str | None, int | None]]) -> None:
    """Open or close the spans of local users whose membership of ``room`` changed:
    user -> (new membership, None when it left the state; position of the change)."""
    suffix = f":{settings.MATRIXHS_SERVER_NAME}"
    local = {u: change for u, change in changes.items() if u.endswith(suffix)}
    if not local:
        return
    fallback: int | None = None
    open_now: dict[str, int] = {}
    last_end: dict[str, int] = {}
    spans = MembershipSpan.objects.filter(room=room, user_id__in=list(local))
    for user_id, start, end in spans.values_list("user_id", "start_ordering", "end_ordering"):
        if end is None:
            open_now[user_id] = start
        else:
            last_end[user_id] = max(end, last_end.get(user_id, end))
    opening: list[MembershipSpan] = []
    closing: dict[int, list[str]] = defaultdict(list)
    for user_id, (membership, position) in local.items():
        if position is None:
            if fallback is None:
                fallback = current_position(Stream.EVENTS)
            position = fallback
        # A membership event from before the span (state resolution can bring one back)
        # must not make spans overlap.
        if membership == "join" and user_id not in open_now:
            start = max(position, last_end.get(user_id, position))
            opening.append(MembershipSpan(user_id=user_id, room=room, start_ordering=start))
        elif membership != "join" and user_id in open_now:
            closing[max(position, open_now[user_id])].append(user_id)
    for position, user_ids in closing.items():
        MembershipSpan.objects.filter(
            room=room, user_id__in=user_ids, end_ordering__isnull=True
        ).update(end_ordering=position)
    if opening:
        MembershipSpan.objects.bulk_create(opening)
