"""Client API views of rooms, by area. Views parse, call actions/queries and answer."""

from __future__ import annotations

from rest_framework.request import Request

from matrixhs.errors import InvalidParam
from matrixhs.protocol.ids import (
    InvalidIdentifier,
    parse_event_id,
    parse_room_alias,
    parse_room_id,
    parse_user_id,
)
from rooms.queries.format import Viewer


def room_id_param(value: str) -> str:
    """Raises: InvalidParam: not a room ID."""
    try:
        return parse_room_id(value)
    except InvalidIdentifier as exc:
        raise InvalidParam(f"Invalid room ID: {exc}") from exc


def user_id_param(value: object, name: str = "user_id") -> str:
    """Raises: InvalidParam: not a user ID."""
    try:
        if not isinstance(value, str):
            raise InvalidIdentifier(f"{name} must be a string")
        return parse_user_id(value)
    except InvalidIdentifier as exc:
        raise InvalidParam(f"Invalid {name}: {exc}") from exc


def event_id_param(value: str) -> str:
    """Raises: InvalidParam: not an event ID."""
    try:
        return parse_event_id(value)
    except InvalidIdentifier as exc:
        raise InvalidParam(f"Invalid event ID: {exc}") from exc


def alias_param(value: str) -> str:
    """Raises: InvalidParam: not a room alias."""
    try:
        return parse_room_alias(value)
    except InvalidIdentifier as exc:
        raise InvalidParam(f"Invalid room alias: {exc}") from exc


def viewer_of(request: Request) -> Viewer:
    return Viewer(request.requester.user_id, request.requester.device_id)
