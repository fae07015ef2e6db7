"""The query parameters of GET /sync, parsed and checked (on a request thread)."""

from __future__ import annotations

from typing import Any

from matrixhs.auth import authenticate
from matrixhs.errors import BadJson, InvalidParam, NotJson
from matrixhs.http import loads_strict
from sync.classic import SyncRequest
from sync.filters import RoomEventFilter
from sync.tokens import SyncToken


def _bool(query: dict[str, str], name: str) -> bool:
    raw = query.get(name, "false")
    if raw not in ("true", "false"):
        raise InvalidParam(f"{name} must be true or false")
    return raw == "true"


def _filter(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    if raw.startswith("{"):
        try:
            value = loads_strict(raw)
        except ValueError as exc:
            raise NotJson("The filter is not valid JSON") from exc
        if not isinstance(value, dict):
            raise BadJson("A filter must be a JSON object")
        return value
    return _stored_filter(raw)


def _stored_filter(filter_id: str) -> dict[str, Any]:
    try:
        from sync.models import Filter
    except ImportError as exc:
        raise InvalidParam("Unknown filter") from exc
    row = Filter.objects.filter(filter_id=filter_id).first()
    if row is None:
        raise InvalidParam(f"Unknown filter {filter_id}")
    return dict(row.definition)


def parse_sync_request(request: Any) -> SyncRequest:
    """Raises: MissingToken/UnknownToken, InvalidParam, NotJson, BadJson."""
    requester = authenticate(request, required=True)
    query = request.GET
    since = SyncToken.parse(query["since"]) if query.get("since") else None
    definition = _filter(query.get("filter"))
    room = definition.get("room") or {}
    if not isinstance(room, dict):
        raise BadJson("filter.room must be an object")
    rooms = room.get("rooms")
    if rooms is not None and not (isinstance(rooms, list) and all(isinstance(r, str) for r in rooms)):
        raise BadJson("filter.room.rooms must be a list of room IDs")
    include_leave = room.get("include_leave", False)
    if not isinstance(include_leave, bool):
        raise BadJson("filter.room.include_leave must be a boolean")
    return SyncRequest(
        user=requester.user,
        device_id=requester.device_id,
        since=since,
        full_state=_bool(query, "full_state"),
        timeline=RoomEventFilter.parse(room.get("timeline")),
        state=RoomEventFilter.parse(room.get("state")),
        include_leave=include_leave,
        room_ids=rooms,
        not_room_ids=list(room.get("not_rooms") or []),
    )
