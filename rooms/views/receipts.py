"""Receipts, read markers, typing and reports."""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

from federation.actions.outbound import share_typing
from matrixhs.errors import Forbidden, JsonDict, NotFound
from matrixhs.http import MatrixView, parse_body, parse_json_object
from matrixhs.time import now_ms
from rooms.actions.receipts import check_thread_id, do_set_fully_read, do_set_receipt
from rooms.actions.reports import do_report
from rooms.models import Event, RoomMembership
from rooms.queries.access import access_joined_room
from rooms.schemas import ReceiptBody, ReportBody, TypingBody
from rooms.views import event_id_param, room_id_param, user_id_param
from sync.actions import do_set_typing


class ReceiptView(MatrixView):
    def post(self, request: Request, room_id: str, receipt_type: str, event_id: str) -> Response:
        body = parse_body(ReceiptBody, request, allow_empty=True)
        access = access_joined_room(request.requester.user_id, room_id_param(room_id))
        thread_id = check_thread_id(body.get("thread_id"))
        do_set_receipt(
            request.requester.user, access.room, receipt_type, event_id_param(event_id), thread_id
        )
        return Response({})


class ReadMarkersView(MatrixView):
    def post(self, request: Request, room_id: str) -> Response:
        body: JsonDict = parse_json_object(request)
        access = access_joined_room(request.requester.user_id, room_id_param(room_id))
        user = request.requester.user
        for key in ("m.fully_read", "m.read", "m.read.private"):
            value = body.get(key)
            if value is None:
                continue
            event_id = event_id_param(value) if isinstance(value, str) else event_id_param("")
            if key == "m.fully_read":
                do_set_fully_read(user, access.room, event_id)
            else:
                do_set_receipt(user, access.room, key, event_id, "")
        return Response({})


class TypingView(MatrixView):
    def put(self, request: Request, room_id: str, user_id: str) -> Response:
        body = parse_body(TypingBody, request)
        if user_id_param(user_id) != request.requester.user_id:
            raise Forbidden("Cannot set typing for another user")
        access = access_joined_room(request.requester.user_id, room_id_param(room_id))
        suffix = f":{settings.MATRIXHS_SERVER_NAME}"
        local_members = [
            m
            for m in RoomMembership.objects.filter(room=access.room, membership="join").values_list(
                "user_id", flat=True
            )
            if m.endswith(suffix)
        ]
        do_set_typing(
            access.room.room_id,
            request.requester.user_id,
            body["typing"],
            body.get("timeout"),
            local_members,
        )
        share_typing(access.room, request.requester.user_id, body["typing"])
        return Response({})


class ReportEventView(MatrixView):
    def post(self, request: Request, room_id: str, event_id: str | None = None) -> Response:
        body = parse_body(ReportBody, request, allow_empty=True)
        room_id = room_id_param(room_id)
        try:  # spec 1.8 (MSC2249): the reporter must be joined; else 404, as for no event
            access = access_joined_room(request.requester.user_id, room_id)
        except Forbidden as exc:
            raise NotFound("Event not found or you are not joined to the room") from exc
        if event_id is not None:
            event_id = event_id_param(event_id)
            if not Event.objects.filter(room=access.room, event_id=event_id).exists():
                raise NotFound("Event not found")
        do_report(
            request.requester.user_id,
            room_id,
            event_id or "",
            body.get("reason"),
            body.get("score"),
            now_ms(),
        )
        return Response({})
