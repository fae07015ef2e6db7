"""Queueing events for other servers, in the event's own transaction.

``enqueue_pdu`` is called by rooms/events.py for every event this server creates (and
for the joins, leaves and knocks it accepted for other servers through send_join,
send_leave and send_knock, whose origin counts on us to pass them on). The rows are the
record; the wake-up after commit only makes the sender look sooner.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction

from federation.models import OutboundPdu
from matrixhs.protocol.events import EventTypes
from matrixhs.protocol.ids import server_name_of
from matrixhs.time import now_ms
from rooms.models import Room, RoomMembership


class _ServersCache:
    """Servers with joined members, per (room, state group): a state group never
    changes, so an entry is right for as long as the room's state is that group."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.entries: OrderedDict[tuple[int, int | None], frozenset[str]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, room: Room) -> frozenset[str]:
        key = (room.pk, room.current_state_group_id)
        with self.lock:
            if key in self.entries:
                self.entries.move_to_end(key)
                return self.entries[key]
        members = RoomMembership.objects.filter(room=room, membership="join").values_list(
            "user_id", flat=True
        )
        servers = frozenset(server_name_of(user_id) for user_id in members)
        with self.lock:
            self.entries[key] = servers
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return servers


_servers = _ServersCache()


def forget_cached_servers() -> None:
    """Tests roll the database back, and row IDs come again: start afresh."""
    with _servers.lock:
        _servers.entries.clear()


def servers_in_room(room: Room) -> frozenset[str]:
    """Every server with a joined member in the room now (ours included)."""
    return _servers.get(room)


def enqueue_pdu(room: Room, event_id: str, pdu: dict, exclude: Iterable[str] = ()) -> None:
    """Owe the event to every other server in the room (and, for a membership change, to
    the server of the user it is about), once the caller's transaction commits."""
    destinations = set(servers_in_room(room))
    if pdu.get("type") == EventTypes.MEMBER and isinstance(pdu.get("state_key"), str):
        destinations.add(server_name_of(pdu["state_key"]))
    destinations -= {settings.MATRIXHS_SERVER_NAME, "", *exclude}
    if not destinations:
        return
    created = now_ms()
    OutboundPdu.objects.bulk_create(
        [
            OutboundPdu(
                destination=destination,
                room_id=room.room_id,
                event_id=event_id,
                created_ms=created,
            )
            for destination in sorted(destinations)
        ],
        ignore_conflicts=True,
    )
    transaction.on_commit(lambda: wake_senders(destinations))


def wake_senders(destinations: Iterable[str]) -> None:
    """Have the queues of ``destinations`` looked at now: by a Celery task each in the
    scaled mode, by the in-process sender in the embedded mode."""
    from federation.sender import wake

    wake(set(destinations))
