from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from matrixhs.http import MatrixView, parse_body
from rooms.actions.create import do_create_room
from rooms.schemas import CreateRoomBody
from rooms.views import user_id_param


class CreateRoomView(MatrixView):
    def post(self, request: Request) -> Response:
        body = parse_body(CreateRoomBody, request)
        for invitee in body.get("invite", []):
            user_id_param(invitee, "invitee")
        return Response({"room_id": do_create_room(request.requester.user, body)})
