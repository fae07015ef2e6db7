"""Client API views of rooms, by area. Views parse, call actions/queries and answer."""

from __future__ import annotations

from rest_framework.request import Request

from matrixhs.http import alias_param, event_id_param, room_id_param, user_id_param
from rooms.queries.format import Viewer

__all__ = ["alias_param", "event_id_param", "room_id_param", "user_id_param", "viewer_of"]


def viewer_of(request: Request) -> Viewer:
    return Viewer(request.requester.user_id, request.requester.device_id)
