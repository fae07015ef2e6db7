"""Reads of rooms for the admin API, in Synapse's shapes. A page of rooms costs a fixed
number of queries, however many rooms it holds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db.models import Count, Q

from accounts.models import Device
from matrixhs.errors import InvalidParam, JsonDict
from matrixhs.protocol.events import EventTypes, Membership
from rooms.events import load_pdus
from rooms.models import BlockedRoom, CurrentStateEvent, Room, RoomMembership

#: The state a room summary reads (all with state key "").
SUMMARY_TYPES = (
    EventTypes.CREATE,
    EventTypes.NAME,
    EventTypes.TOPIC,
    EventTypes.AVATAR,
    EventTypes.CANONICAL_ALIAS,
    EventTypes.JOIN_RULES,
    EventTypes.GUEST_ACCESS,
    EventTypes.HISTORY_VISIBILITY,
    EventTypes.ENCRYPTION,
)

#: Synapse's ``order_by`` values for GET /rooms; the summary field each sorts by.
ROOM_ORDER = {
    "name": "name",
    "canonical_alias": "canonical_alias",
    "joined_members": "joined_members",
    "joined_local_members": "joined_local_members",
    "version": "version",
    "creator": "creator",
    "encryption": "encryption",
    "federatable": "federatable",
    "public": "public",
    "join_rules": "join_rules",
    "guest_access": "guest_access",
    "history_visibility": "history_visibility",
    "state_events": "state_events",
    "size": "joined_members",
    "alphabetical": "name",
}


def _content(pdus: dict[str, JsonDict], event_id: str | None) -> JsonDict:
    content = pdus.get(event_id, {}).get("content") if event_id else None
    return content if isinstance(content, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def room_summaries(rooms: Sequence[Room]) -> list[JsonDict]:
    """Synapse's room entries for ``rooms`` (four queries in all)."""
    pks = [room.pk for room in rooms]
    state: dict[int, dict[str, str]] = {}
    for room_pk, kind, event_id in CurrentStateEvent.objects.filter(
        room_id__in=pks, state_key="", type__in=SUMMARY_TYPES
    ).values_list("room_id", "type", "event_id"):
        state.setdefault(room_pk, {})[kind] = event_id
    pdus = load_pdus([eid for kinds in state.values() for eid in kinds.values()])
    counts = dict(
        CurrentStateEvent.objects.filter(room_id__in=pks)
        .values("room_id")
        .annotate(n=Count("id"))
        .values_list("room_id", "n")
    )
    local = f":{settings.MATRIXHS_SERVER_NAME}"
    members = {
        row["room_id"]: row
        for row in RoomMembership.objects.filter(room_id__in=pks, membership=Membership.JOIN)
        .values("room_id")
        .annotate(n=Count("id"), local=Count("id", filter=Q(user_id__endswith=local)))
    }
    out = []
    for room in rooms:
        kinds = state.get(room.pk, {})
        content = {kind: _content(pdus, kinds.get(kind)) for kind in SUMMARY_TYPES}
        joined = members.get(room.pk, {})
        out.append(
            {
                "room_id": room.room_id,
                "name": _str(content[EventTypes.NAME].get("name")),
                "topic": _str(content[EventTypes.TOPIC].get("topic")),
                "avatar": _str(content[EventTypes.AVATAR].get("url")),
                "canonical_alias": _str(content[EventTypes.CANONICAL_ALIAS].get("alias")),
                "joined_members": joined.get("n", 0),
                "joined_local_members": joined.get("local", 0),
                "version": room.room_version,
                "creator": room.creator,
                "encryption": _str(content[EventTypes.ENCRYPTION].get("algorithm")),
                "federatable": content[EventTypes.CREATE].get("m.federate", True) is not False,
                "public": room.is_public,
                "join_rules": _str(content[EventTypes.JOIN_RULES].get("join_rule")),
                "guest_access": _str(content[EventTypes.GUEST_ACCESS].get("guest_access")),
                "history_visibility": _str(
                    content[EventTypes.HISTORY_VISIBILITY].get("history_visibility")
                ),
                "state_events": counts.get(room.pk, 0),
                "room_type": _str(content[EventTypes.CREATE].get("type")),
            }
        )
    return out


#: Orderings that put the largest first unless ``dir=b`` (as Synapse sorts them).
LARGEST_FIRST = frozenset({"joined_members", "joined_local_members", "version", "state_events"})

#: Sort fields read from a state event's content: (event type, content key).
STATE_SORT = {
    "name": (EventTypes.NAME, "name"),
    "canonical_alias": (EventTypes.CANONICAL_ALIAS, "alias"),
    "encryption": (EventTypes.ENCRYPTION, "algorithm"),
    "join_rules": (EventTypes.JOIN_RULES, "join_rule"),
    "guest_access": (EventTypes.GUEST_ACCESS, "guest_access"),
    "history_visibility": (EventTypes.HISTORY_VISIBILITY, "history_visibility"),
    "federatable": (EventTypes.CREATE, "m.federate"),
}


def _state_values(kind: str, key: str) -> dict[int, Any]:
    """``content[key]`` of every room's current ``kind`` event, by room pk (two queries)."""
    rows = CurrentStateEvent.objects.filter(type=kind, state_key="").values_list(
        "room_id", "event_id"
    )
    ids = dict(rows)
    pdus = load_pdus(ids.values())
    return {pk: _content(pdus, event_id).get(key) for pk, event_id in ids.items()}


def _sort_values(field: str, rooms: list[Room]) -> dict[int, Any]:
    """The value each room sorts by (None sorts last), whatever the number of rooms in a
    fixed number of queries."""
    if field in STATE_SORT:
        values = _state_values(*STATE_SORT[field])
        if field == "federatable":
            return {room.pk: values.get(room.pk) is not False for room in rooms}
        return {pk: v if isinstance(v, str) else None for pk, v in values.items()}
    if field in ("version", "creator", "public"):
        column = {"version": "room_version", "creator": "creator", "public": "is_public"}[field]
        return {room.pk: getattr(room, column) for room in rooms}
    if field == "state_events":
        return dict(
            CurrentStateEvent.objects.values("room_id")
            .annotate(n=Count("id"))
            .values_list("room_id", "n")
        )
    joined = RoomMembership.objects.filter(membership=Membership.JOIN)
    if field == "joined_local_members":
        joined = joined.filter(user_id__endswith=f":{settings.MATRIXHS_SERVER_NAME}")
    counts = dict(joined.values("room_id").annotate(n=Count("id")).values_list("room_id", "n"))
    return {room.pk: counts.get(room.pk, 0) for room in rooms}


def _matching(rooms: list[Room], search_term: str) -> list[Room]:
    """Rooms whose ID, name or canonical alias holds ``search_term`` (any case)."""
    term = search_term.casefold()
    names = _state_values(EventTypes.NAME, "name")
    aliases = _state_values(EventTypes.CANONICAL_ALIAS, "alias")
    return [
        room
        for room in rooms
        if any(
            isinstance(text, str) and term in text.casefold()
            for text in (room.room_id, names.get(room.pk), aliases.get(room.pk))
        )
    ]


def list_rooms(
    search_term: str | None, order_by: str, backwards: bool, start: int, limit: int
) -> tuple[list[JsonDict], int]:
    """One page of the rooms this server knows, and how many match.

    Sorting reads one value per room (a fixed number of queries, whatever the number of
    rooms); only the page's rooms are summarised.

    Raises:
        InvalidParam: an unknown ``order_by``.
    """
    field = ROOM_ORDER.get(order_by)
    if field is None:
        raise InvalidParam(f"Unknown order_by {order_by!r}")
    rooms = list(Room.objects.order_by("room_id"))
    if search_term:
        rooms = _matching(rooms, search_term)
    values = _sort_values(field, rooms)
    descending = (field in LARGEST_FIRST) != backwards
    present = [room for room in rooms if values.get(room.pk) is not None]
    absent = [room for room in rooms if values.get(room.pk) is None]
    present.sort(key=lambda room: values[room.pk], reverse=descending)
    ordered = present + absent  # rooms without the value last, by room ID
    return room_summaries(ordered[start : start + limit]), len(rooms)


def room_details(room: Room) -> JsonDict:
    """GET /_synapse/admin/v1/rooms/{roomId}."""
    summary = room_summaries([room])[0]
    local = f":{settings.MATRIXHS_SERVER_NAME}"
    joined_local = RoomMembership.objects.filter(
        room=room, membership=Membership.JOIN, user_id__endswith=local
    ).values_list("user_id", flat=True)
    devices = Device.objects.filter(user__user_id__in=list(joined_local)).count()
    local_rows = RoomMembership.objects.filter(room=room, user_id__endswith=local)
    # Forgotten: every local user who was in the room has forgotten it (Synapse's meaning).
    forgotten = local_rows.exists() and not local_rows.filter(forgotten=False).exists()
    blocked = BlockedRoom.objects.filter(room_id=room.room_id).exists()
    return {**summary, "joined_local_devices": devices, "forgotten": forgotten, "blocked": blocked}


def joined_members(room: Room) -> list[str]:
    return list(
        RoomMembership.objects.filter(room=room, membership=Membership.JOIN)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )
