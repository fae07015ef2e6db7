"""Reading a room's history from before this server joined it: when a client pages back
past the oldest events we have, the room's other servers are asked for the events before
them (server-server API "Backfilling and retrieving missing events")."""

from __future__ import annotations

import logging
import time

from django.conf import settings

from federation import peers
from federation.actions.inbound import Inbound
from rooms.models import Event, EventEdge, Room, RoomMembership

logger = logging.getLogger(__name__)

#: After a backfill that brought nothing, the room is not asked about again for this long
#: (a client at the top of a room's history pages again and again).
IDLE_RETRY_S = 30.0
_idle_until: dict[str, float] = {}

#: Most events asked for at once (a /messages page is at most 1000).
MAX_BACKFILL = 100
#: The oldest events whose prev events we lack, at most this many per request.
MAX_EXTREMITIES = 5


def backward_extremities(room: Room) -> list[str]:
    """Timeline events of the room whose prev events we lack (the edges of what we have
    of its history), the oldest first."""
    stored = Event.objects.filter(room=room, outlier=False).values("event_id")
    edges = (
        EventEdge.objects.filter(event__room=room, event__outlier=False)
        .exclude(prev_event_id__in=stored)
        .order_by("event__depth")
        .values_list("event__event_id", flat=True)
    )
    return list(dict.fromkeys(edges[: MAX_EXTREMITIES * 4]))[:MAX_EXTREMITIES]


def _servers(room: Room) -> list[str]:
    """Other servers with joined members, the most members first."""
    ours = settings.MATRIXHS_SERVER_NAME
    rows = (
        RoomMembership.objects.filter(room=room, membership="join")
        .exclude(user_id__endswith=f":{ours}")
        .values_list("user_id", flat=True)
    )
    counts: dict[str, int] = {}
    for user_id in rows:
        server = user_id.split(":", 1)[1]
        counts[server] = counts.get(server, 0) + 1
    return sorted(counts, key=lambda s: (-counts[s], s))


def backfill(room: Room, limit: int) -> int:
    """Fetch up to ``limit`` events from before the oldest ones we have, from the first
    server that answers. Returns how many were stored (0: nothing before, or no answer)."""
    if not settings.MATRIXHS_FEDERATION_ENABLED:
        return 0
    if _idle_until.get(room.room_id, 0.0) > time.monotonic():
        return 0
    extremities = backward_extremities(room)
    if not extremities:
        return 0
    limit = max(1, min(limit, MAX_BACKFILL))
    client = peers.remote()
    for server in _servers(room):
        try:
            pdus = client.backfill(server, room.room_id, extremities, limit)
        except Exception as exc:
            logger.info("Backfilling %s from %s failed: %s", room.room_id, server, exc)
            continue
        inbound = Inbound(server, room, client, peers.verify_event)
        stored = inbound.receive_backfilled(pdus)
        if stored:
            _idle_until.pop(room.room_id, None)
            return stored
    if len(_idle_until) > 10_000:
        _idle_until.clear()
    _idle_until[room.room_id] = time.monotonic() + IDLE_RETRY_S
    return 0


def forget_idle_rooms() -> None:
    """Tests: every room may be asked about again."""
    _idle_until.clear()
