"""Queueing events (and EDUs) for other servers, in the event's own transaction.

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

from federation.models import OutboundEdu, OutboundPdu
from matrixhs.errors import JsonDict
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


def enqueue_edu(
    destinations: Iterable[str], edu_type: str, content: JsonDict, ttl_ms: int = 0
) -> None:
    """Owe an EDU to each of ``destinations`` (not ours), once the caller's transaction
    commits; with ``ttl_ms``, one not sent within that time is dropped."""
    targets = set(destinations) - {settings.MATRIXHS_SERVER_NAME, ""}
    if not targets:
        return
    created = now_ms()
    OutboundEdu.objects.bulk_create(
        OutboundEdu(
            destination=destination,
            edu_type=edu_type,
            content=content,
            created_ms=created,
            expires_ms=created + ttl_ms if ttl_ms else 0,
        )
        for destination in sorted(targets)
    )
    transaction.on_commit(lambda: wake_senders(targets))


#: A typing notification not sent within this time is stale: dropped from the queue.
TYPING_EDU_TTL_MS = 20_000


def share_typing(room: Room, user_id: str, typing: bool) -> None:
    """Tell the room's other servers that our user started or stopped typing."""
    content = {"room_id": room.room_id, "user_id": user_id, "typing": typing}
    enqueue_edu(servers_in_room(room), "m.typing", content, ttl_ms=TYPING_EDU_TTL_MS)


def share_receipt(room: Room, user_id: str, event_id: str, thread_id: str, ts: int) -> None:
    """Tell the room's other servers about our user's public read receipt."""
    data: JsonDict = {"ts": ts}
    if thread_id:
        data["thread_id"] = thread_id
    content = {room.room_id: {"m.read": {user_id: {"event_ids": [event_id], "data": data}}}}
    enqueue_edu(servers_in_room(room), "m.receipt", content)


#: Presence not sent within this time is stale (newer presence follows, or none is due).
PRESENCE_EDU_TTL_MS = 5 * 60 * 1000


def servers_sharing_rooms(user_ids: Iterable[str]) -> set[str]:
    """The other servers with members joined to a room one of ``user_ids`` is joined to."""
    rooms = RoomMembership.objects.filter(user_id__in=list(user_ids), membership="join").values(
        "room_id"
    )
    members = (
        RoomMembership.objects.filter(room_id__in=rooms, membership="join")
        .values_list("user_id", flat=True)
        .distinct()
    )
    return {server_name_of(m) for m in members} - {settings.MATRIXHS_SERVER_NAME}


def share_presence(pushes: list[JsonDict]) -> None:
    """Send our users' new presence (``m.presence`` entries, each with its ``user_id``)
    to the servers sharing a room with them: one EDU per server."""
    by_server: dict[str, list[JsonDict]] = {}
    for push in pushes:
        for server in servers_sharing_rooms([push["user_id"]]):
            by_server.setdefault(server, []).append(push)
    for server, entries in sorted(by_server.items()):
        enqueue_edu([server], "m.presence", {"push": entries}, ttl_ms=PRESENCE_EDU_TTL_MS)


def wake_senders(destinations: Iterable[str]) -> None:
    """Have the queues of ``destinations`` looked at now: by a Celery task each in the
    scaled mode, by the in-process sender in the embedded mode."""
    from federation.sender import wake

    wake(set(destinations))
