"""Room tags (spec "Room Tagging"): the ``m.tag`` room account data, tag by tag."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from accounts.actions.account_data import do_delete_room_tag, do_set_room_tag
from accounts.queries import access_own_user, room_tags
from matrixhs.http import MatrixView, parse_json_object
from rooms.views import room_id_param, user_id_param


class TagsView(MatrixView):
    """GET /user/{userId}/rooms/{roomId}/tags."""

    def get(self, request: Request, user_id: str, room_id: str) -> Response:
        access_own_user(request.requester, user_id_param(user_id))
        return Response({"tags": room_tags(request.requester.user, room_id_param(room_id))})


class TagView(MatrixView):
    """PUT and DELETE /user/{userId}/rooms/{roomId}/tags/{tag}."""

    def put(self, request: Request, user_id: str, room_id: str, tag: str) -> Response:
        access_own_user(request.requester, user_id_param(user_id))
        content = parse_json_object(request)
        do_set_room_tag(request.requester.user, room_id_param(room_id), tag, content)
        return Response({})

    def delete(self, request: Request, user_id: str, room_id: str, tag: str) -> Response:
        access_own_user(request.requester, user_id_param(user_id))
        do_delete_room_tag(request.requester.user, room_id_param(room_id), tag)
        return Response({})
