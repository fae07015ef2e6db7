"""The published room directory and room summaries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from django.conf import settings

from matrixhs.errors import BadJson, InvalidParam, JsonDict
from matrixhs.protocol.events import EventTypes
from matrixhs.tokens import parse_position
from rooms.events import load_pdus
from rooms.models import CurrentStateEvent, Room, RoomAlias, RoomMembership

SUMMARY_KEYS = [
    (EventTypes.NAME, ""),
    (EventTypes.TOPIC, ""),
    (EventTypes.AVATAR, ""),
    (EventTypes.CANONICAL_ALIAS, ""),
    (EventTypes.JOIN_RULES, ""),
    (EventTypes.HISTORY_VISIBILITY, ""),
    (EventTypes.GUEST_ACCESS, ""),
    (EventTypes.CREATE, ""),
]


def room_summaries(rooms: Sequence[Room]) -> list[JsonDict]:
    """PublishedRoomsChunk entries for ``rooms`` (three queries whatever their number)."""
    if not rooms:
        return []
    rows = CurrentStateEvent.objects.filter(
        room__in=rooms, type__in={t for t, _ in SUMMARY_KEYS}, state_key=""
    ).values_list("room_id", "type", "event_id")
    pdus = load_pdus(event_id for _, _, event_id in rows)
    content: dict[int, dict[str, JsonDict]] = {}
    for room_pk, event_type, event_id in rows:
        content.setdefault(room_pk, {})[event_type] = pdus.get(event_id, {}).get("content", {})
    joined = Counter(
        RoomMembership.objects.filter(room__in=rooms, membership="join").values_list(
            "room_id", flat=True
        )
    )
    return [_summary(room, content.get(room.pk, {}), joined[room.pk]) for room in rooms]


def _summary(room: Room, state: dict[str, JsonDict], joined: int) -> JsonDict:
    def field(event_type: str, key: str) -> object:
        return state.get(event_type, {}).get(key)

    summary: JsonDict = {
        "room_id": room.room_id,
        "num_joined_members": joined,
        "world_readable": field(EventTypes.HISTORY_VISIBILITY, "history_visibility")
        == "world_readable",
        "guest_can_join": field(EventTypes.GUEST_ACCESS, "guest_access") == "can_join",
        "join_rule": field(EventTypes.JOIN_RULES, "join_rule") or "invite",
    }
    for key, value in (
        ("name", field(EventTypes.NAME, "name")),
        ("topic", field(EventTypes.TOPIC, "topic")),
        ("avatar_url", field(EventTypes.AVATAR, "url")),
        ("canonical_alias", field(EventTypes.CANONICAL_ALIAS, "alias")),
        ("room_type", field(EventTypes.CREATE, "type")),
    ):
        if isinstance(value, str) and value:
            summary[key] = value
    return summary


def public_rooms(
    limit: int | None, since: str | None, search: str | None, room_types: list[object] | None
) -> JsonDict:
    """One page of the directory, most joined members first; ``since`` is an offset token.

    Raises:
        InvalidParam: a ``since`` token this server did not issue.
    """
    offset = 0
    if since:
        parsed = parse_position(since[1:]) if since.startswith("o") else None
        if parsed is None:
            raise InvalidParam("Invalid since token")
        offset = parsed
    chunk = room_summaries(list(Room.objects.filter(is_public=True)))
    if search:
        needle = search.casefold()
        chunk = [
            r
            for r in chunk
            if any(
                needle in str(r.get(k, "")).casefold() for k in ("name", "topic", "canonical_alias")
            )
            or needle == r["room_id"].casefold()
        ]
    if room_types is not None:
        chunk = [r for r in chunk if r.get("room_type") in room_types]
    chunk.sort(key=lambda r: (-r["num_joined_members"], r["room_id"]))
    total = len(chunk)
    page = chunk[offset : offset + limit] if limit else chunk[offset:]
    body: JsonDict = {"chunk": page, "total_room_count_estimate": total}
    if offset + len(page) < total:
        body["next_batch"] = f"o{offset + len(page)}"
    if offset > 0:
        body["prev_batch"] = f"o{max(0, offset - (limit or offset))}"
    return body


def public_rooms_search(body: JsonDict) -> JsonDict:
    """A page of the directory for a POST /publicRooms body (client or federation API)."""
    room_filter = body.get("filter") or {}
    search = room_filter.get("generic_search_term")
    room_types = room_filter.get("room_types")
    if search is not None and not isinstance(search, str):
        raise BadJson("generic_search_term must be a string")
    if room_types is not None and not isinstance(room_types, list):
        raise BadJson("room_types must be a list")
    return public_rooms(body.get("limit") or None, body.get("since"), search, room_types)


def alias_servers(room: Room) -> list[str]:
    """Servers to join the room through: ours, then the others with joined members, the
    most members first."""
    ours = settings.MATRIXHS_SERVER_NAME
    counts = Counter(
        user_id.split(":", 1)[1]
        for user_id in RoomMembership.objects.filter(room=room, membership="join").values_list(
            "user_id", flat=True
        )
    )
    others = sorted((s for s in counts if s != ours), key=lambda s: (-counts[s], s))
    return [ours, *others]


def local_aliases(room: Room) -> list[str]:
    return list(
        RoomAlias.objects.filter(room=room).order_by("alias").values_list("alias", flat=True)
    )
