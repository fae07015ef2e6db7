"""Reading a room's history from before this server joined it: when a client pages back
past the oldest events we have, the room's other servers are asked for the events before
them (server-server API "Backfilling and retrieving missing events")."""

from __future__ import annotations

import logging
import time

from django.conf import settings

from federation import peers
from federation.actions.inbound import Inbound
from matrixhs import sql
from rooms.models import Event, EventEdge, Room, RoomMembership

logger = logging.getLogger(__name__)

#: After a backfill that brought nothing, the room is not asked about again for this long
#: (a client at the top of a room's history pages again and again).
IDLE_RETRY_S = 30.0
_idle_until: dict[str, float] = {}

#: Most events asked for at once (a /messages page is at most 1000).
MAX_BACKFILL = 100
#: Holes (events whose prev events we lack) named in one request, at most.
MAX_EXTREMITIES = 5


def holes_between(room: Room, floor: int, ceiling: int | None) -> list[str]:
    """Timeline events deeper than ``floor`` and at most ``ceiling`` deep whose prev
    events we lack (the edges of what we have of the room's history): holes in the
    stretch of history a /messages page covers, the newest first. Reads only that
    stretch's edges, not the whole room's."""
    ceiling_sql, params = ("", []) if ceiling is None else ("AND e.depth <= %s", [ceiling])
    holes = sql.rows(
        _HOLES_SQL.format(ceiling=ceiling_sql), [room.pk, False, floor, *params, False]
    )
    return list(dict.fromkeys(event_id for (event_id,) in holes))[:MAX_EXTREMITIES]


#: Edges looked at for holes under one /messages page (a page is at most 1000 events).
MAX_PAGE_EDGES = 2000


#: Every backwards /messages page asks (in one query, written out once): of the newest
#: MAX_PAGE_EDGES edges in the depth range, those whose prev event is not in the timeline.
_HOLES_SQL = (
    "SELECT w.event_id FROM ("
    f"SELECT e.event_id, x.prev_event_id AS prev, e.depth FROM {EventEdge._meta.db_table} x "
    f"JOIN {Event._meta.db_table} e ON x.event_id = e.id "
    "WHERE e.room_id = %s AND e.outlier = %s AND e.depth > %s {ceiling} "
    f"ORDER BY e.depth DESC LIMIT {MAX_PAGE_EDGES}) w "
    f"WHERE NOT EXISTS (SELECT 1 FROM {Event._meta.db_table} p "
    "WHERE p.event_id = w.prev AND p.outlier = %s) ORDER BY w.depth DESC"
)


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


def backfill(room: Room, holes: list[str], limit: int) -> int:
    """Fetch up to ``limit`` events from before ``holes`` (events of
    :func:`holes_between`: where what we have of the room's history stops, or the history
    we missed while out of the room), from the first server that answers. Returns how
    many were stored (0: nothing before, or no answer)."""
    if not settings.MATRIXHS_FEDERATION_ENABLED:
        return 0
    if _idle_until.get(room.room_id, 0.0) > time.monotonic():
        return 0
    limit = max(1, min(limit, MAX_BACKFILL))
    client = peers.remote()
    for server in _servers(room):
        try:
            pdus = client.backfill(server, room.room_id, holes, limit)
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
