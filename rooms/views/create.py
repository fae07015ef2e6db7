from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from matrixhs.http import MatrixView, parse_body
from rooms.actions.create import do_create_room
from rooms.actions.upgrade import do_upgrade_room
from rooms.schemas import CreateRoomBody, UpgradeRoomBody
from rooms.views import room_id_param, user_id_param


class CreateRoomView(MatrixView):
    suspended_refused = ("POST",)

    def post(self, request: Request) -> Response:
        body = parse_body(CreateRoomBody, request)
        for invitee in body.get("invite", []):
            user_id_param(invitee, "invitee")
        return Response({"room_id": do_create_room(request.requester.user, body)})


class UpgradeRoomView(MatrixView):
    """POST /rooms/{roomId}/upgrade."""

    suspended_refused = ("POST",)

    def post(self, request: Request, room_id: str) -> Response:
        body = parse_body(UpgradeRoomBody, request)
        new_room = do_upgrade_room(
            request.requester.user, room_id_param(room_id), body["new_version"]
        )
        return Response({"replacement_room": new_room})
