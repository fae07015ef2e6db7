"""Rooms: /_synapse/admin/v1/rooms..., blocking, and deletion (v2, a background job)."""

from __future__ import annotations

from django.db import transaction
from rest_framework.request import Request
from rest_framework.response import Response

from matrixhs.errors import Codes, InvalidParam, MatrixError, NotFound
from matrixhs.filters import RoomEventFilter
from matrixhs.http import parse_body, query_int, room_id_param
from matrixhs.time import now_ms
from rooms.actions.blocking import do_block_room, do_unblock_room
from rooms.events import load_pdus
from rooms.models import BlockedRoom, CurrentStateEvent, Room
from rooms.queries.access import RoomAccess
from rooms.queries.format import Viewer, client_format_pdu
from rooms.queries.timeline import paginate
from serveradmin.actions.rooms import do_run_room_deletion_now, do_schedule_room_deletion
from serveradmin.models import RoomDeletion
from serveradmin.queries import rooms as queries
from serveradmin.queries.deletions import format_deletion
from serveradmin.schemas import BlockBody, DeleteRoomBody
from serveradmin.views.base import AdminView, page_params, room_or_404


def _schedule_deletion(view: AdminView, request: Request, room_id: str) -> RoomDeletion:
    """Raises: InvalidParam (bad body, a deletion under way); NotFound (unknown room, and
    no block asked: a room not known here can only be blocked)."""
    room_id = room_id_param(room_id)
    body = parse_body(DeleteRoomBody, request, allow_empty=True)
    if not body["block"] and not Room.objects.filter(room_id=room_id).exists():
        raise NotFound("Room not found")
    if RoomDeletion.objects.filter(
        room_id=room_id, status__in=(RoomDeletion.SCHEDULED, RoomDeletion.ACTIVE)
    ).exists():
        raise InvalidParam("A deletion of this room is already under way")
    with transaction.atomic():
        job = do_schedule_room_deletion(room_id, request.requester.user_id, body)
        view.audit(request, "room.delete", room_id, delete_id=job.delete_id, **body)
    return job


class RoomsView(AdminView):
    """GET /_synapse/admin/v1/rooms."""

    def get(self, request: Request) -> Response:
        start, limit, backwards = page_params(request)
        rooms, total = queries.list_rooms(
            request.query_params.get("search_term"),
            request.query_params.get("order_by", "name"),
            backwards,
            start,
            limit,
        )
        body = {"rooms": rooms, "offset": start, "total_rooms": total}
        if start + len(rooms) < total:
            body["next_batch"] = start + len(rooms)
        if start > 0:
            body["prev_batch"] = max(0, start - limit)
        return Response(body)


class RoomView(AdminView):
    """GET /_synapse/admin/v1/rooms/{roomId}, and DELETE: the deletion of v2, run while
    the request waits (Synapse's older API), answering what it did."""

    def get(self, request: Request, room_id: str) -> Response:
        return Response(queries.room_details(room_or_404(room_id)))

    def delete(self, request: Request, room_id: str) -> Response:
        job = do_run_room_deletion_now(_schedule_deletion(self, request, room_id))
        if job.status == RoomDeletion.FAILED:
            status = job.result.get("error_status", 500)  # 500: an unexpected error, logged
            errcode = job.result.get("errcode", Codes.UNKNOWN)
            raise MatrixError(status, errcode, f"Deleting the room failed: {job.error}")
        return Response(format_deletion(job, with_id=False)["shutdown_room"])


class RoomMembersView(AdminView):
    """GET /_synapse/admin/v1/rooms/{roomId}/members."""

    def get(self, request: Request, room_id: str) -> Response:
        members = queries.joined_members(room_or_404(room_id))
        return Response({"members": members, "total": len(members)})


class RoomStateView(AdminView):
    """GET /_synapse/admin/v1/rooms/{roomId}/state."""

    def get(self, request: Request, room_id: str) -> Response:
        room = room_or_404(room_id)
        ids = list(
            CurrentStateEvent.objects.filter(room=room)
            .order_by("type", "state_key")
            .values_list("event_id", flat=True)
        )
        pdus = load_pdus(ids)
        now = now_ms()
        state = [client_format_pdu(pdus[eid], eid, room.room_id, now) for eid in ids if eid in pdus]
        return Response({"state": state})


class RoomMessagesView(AdminView):
    """GET /_synapse/admin/v1/rooms/{roomId}/messages: every accepted event, whatever
    the history visibility, paged as the client API's /messages."""

    def get(self, request: Request, room_id: str) -> Response:
        room = room_or_404(room_id)
        direction = request.query_params.get("dir", "f")
        if direction not in ("b", "f"):
            raise InvalidParam("dir must be b or f")
        limit = query_int(request, "limit", 10, minimum=1)
        event_filter = RoomEventFilter.from_query(request.query_params.get("filter"))
        body = paginate(
            RoomAccess(room, None, None, peeking=True),
            Viewer(request.requester.user_id),
            request.query_params.get("from"),
            request.query_params.get("to"),
            backwards=direction == "b",
            limit=limit,
            event_filter=event_filter,
            operator=True,
        )
        return Response(body)


class BlockRoomView(AdminView):
    """GET and PUT /_synapse/admin/v1/rooms/{roomId}/block (the room need not be here)."""

    def get(self, request: Request, room_id: str) -> Response:
        row = BlockedRoom.objects.filter(room_id=room_id_param(room_id)).first()
        if row is None:
            return Response({"block": False})
        return Response({"block": True, "user_id": row.blocked_by})

    def put(self, request: Request, room_id: str) -> Response:
        room_id = room_id_param(room_id)
        body = parse_body(BlockBody, request)
        with transaction.atomic():
            if body["block"]:
                do_block_room(room_id, request.requester.user_id)
            else:
                do_unblock_room(room_id)
            self.audit(request, "room.block", room_id, block=body["block"])
        return Response({"block": body["block"]})


class DeleteRoomView(AdminView):
    """DELETE /_synapse/admin/v2/rooms/{roomId}: answered at once with a delete_id; the
    shutdown runs as a background job."""

    def delete(self, request: Request, room_id: str) -> Response:
        return Response({"delete_id": _schedule_deletion(self, request, room_id).delete_id})


class RoomDeleteStatusView(AdminView):
    """GET /_synapse/admin/v2/rooms/{roomId}/delete_status."""

    def get(self, request: Request, room_id: str) -> Response:
        jobs = RoomDeletion.objects.filter(room_id=room_id_param(room_id)).order_by("pk")
        results = [format_deletion(job) for job in jobs]
        if not results:
            raise NotFound("No deletion for this room")
        return Response({"results": results})


class DeleteStatusView(AdminView):
    """GET /_synapse/admin/v2/rooms/delete_status/{deleteId}."""

    def get(self, request: Request, delete_id: str) -> Response:
        job = RoomDeletion.objects.filter(delete_id=delete_id).first()
        if job is None:
            raise NotFound("No such deletion")
        return Response(format_deletion(job, with_id=False))
