"""Sending and reading events: send, state, redact, event, messages, context, members."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from accounts.queries import room_account_data
from federation.actions.backfill import backfill
from matrixhs.errors import Forbidden, InvalidParam, JsonDict, MissingParam, NotFound
from matrixhs.filters import RoomEventFilter
from matrixhs.http import MatrixView, parse_body, parse_json_object, query_int
from rooms.actions.send import do_redact, do_send_message, do_send_state
from rooms.queries import state as state_queries
from rooms.queries.access import access_event, access_joined_room, access_room
from rooms.queries.format import format_event, format_events
from rooms.queries.timeline import context, event_at_timestamp, paginate
from rooms.schemas import ReasonBody
from rooms.views import event_id_param, room_id_param, viewer_of
from sync.presence import current_presence


class SendView(MatrixView):
    allow_guests = True

    def put(self, request: Request, room_id: str, event_type: str, txn_id: str) -> Response:
        content = parse_json_object(request)
        event = do_send_message(
            request.requester, room_id_param(room_id), event_type, content, txn_id
        )
        return Response({"event_id": event.event_id})


class RedactView(MatrixView):
    def put(self, request: Request, room_id: str, event_id: str, txn_id: str) -> Response:
        body = parse_body(ReasonBody, request, allow_empty=True)
        event = do_redact(
            request.requester,
            room_id_param(room_id),
            event_id_param(event_id),
            body.get("reason"),
            txn_id,
        )
        return Response({"event_id": event.event_id})


class StateView(MatrixView):
    """GET /rooms/{roomId}/state, and /state/{eventType}[/{stateKey}] (GET and PUT)."""

    allow_guests = True

    def get(
        self, request: Request, room_id: str, event_type: str | None = None, state_key: str = ""
    ) -> Response:
        access = access_room(request.requester.user_id, room_id_param(room_id))
        viewer = viewer_of(request)
        if event_type is None:
            return Response(format_events(state_queries.state_events(access), viewer, bundle=False))
        event = state_queries.state_event(access, event_type, state_key)
        formatted = format_event(event, viewer)
        fmt = request.query_params.get("format", "content")
        if fmt not in ("content", "event"):
            raise InvalidParam("format must be content or event")
        return Response(formatted if fmt == "event" else formatted["content"])

    def put(
        self, request: Request, room_id: str, event_type: str | None = None, state_key: str = ""
    ) -> Response:
        if event_type is None:
            raise NotFound()
        content = parse_json_object(request)
        event = do_send_state(
            request.requester, room_id_param(room_id), event_type, state_key, content
        )
        return Response({"event_id": event.event_id})


class EventView(MatrixView):
    allow_guests = True

    def get(self, request: Request, room_id: str, event_id: str) -> Response:
        room_id, event_id = room_id_param(room_id), event_id_param(event_id)
        try:
            access = access_room(request.requester.user_id, room_id)
        except Forbidden as exc:  # the spec answers 404 for "not allowed" here
            raise NotFound("Event not found") from exc
        event = access_event(access, request.requester.user_id, event_id)
        return Response(format_event(event, viewer_of(request)))


#: Backfill requests one /messages page may make.
BACKFILL_ROUNDS = 3


class MessagesView(MatrixView):
    allow_guests = True

    def get(self, request: Request, room_id: str) -> Response:
        access = access_room(request.requester.user_id, room_id_param(room_id))
        direction = request.query_params.get("dir", "b")
        if direction not in ("b", "f"):
            raise InvalidParam("dir must be b or f")
        limit = query_int(request, "limit", 10, minimum=1)
        event_filter = RoomEventFilter.from_query(request.query_params.get("filter"))
        if event_filter.limit is not None:
            limit = min(limit, event_filter.limit)

        def page() -> JsonDict:
            return paginate(
                access,
                viewer_of(request),
                request.query_params.get("from"),
                request.query_params.get("to"),
                backwards=direction == "b",
                limit=limit,
                event_filter=event_filter,
            )

        body = page()
        # Paging back past the oldest events we have: the room's other servers may have
        # what came before (history from before we joined). A page short of its limit
        # asks again, a bounded number of times.
        for _ in range(BACKFILL_ROUNDS):
            if direction != "b" or "end" in body:
                break
            if backfill(access.room, limit - len(body["chunk"]) + 1) == 0:
                break
            body = page()
        return Response(body)


class ContextView(MatrixView):
    allow_guests = True

    def get(self, request: Request, room_id: str, event_id: str) -> Response:
        access = access_room(request.requester.user_id, room_id_param(room_id))
        event = access_event(access, request.requester.user_id, event_id_param(event_id))
        limit = query_int(request, "limit", 10, minimum=0)
        event_filter = RoomEventFilter.from_query(request.query_params.get("filter"))
        return Response(context(access, viewer_of(request), event, min(limit, 100), event_filter))


class TimestampToEventView(MatrixView):
    """GET /v1/rooms/{roomId}/timestamp_to_event (and the MSC3030 path clients use)."""

    allow_guests = True

    def get(self, request: Request, room_id: str) -> Response:
        access = access_room(request.requester.user_id, room_id_param(room_id))
        if "ts" not in request.query_params:
            raise MissingParam("Missing ts")
        ts = query_int(request, "ts", 0)
        direction = request.query_params.get("dir")
        if direction not in ("f", "b"):
            raise InvalidParam("dir must be f or b")
        return Response(event_at_timestamp(access, viewer_of(request), ts, direction == "f"))


class MembersView(MatrixView):
    allow_guests = True

    def get(self, request: Request, room_id: str) -> Response:
        access = access_room(request.requester.user_id, room_id_param(room_id))
        params = request.query_params
        members = state_queries.member_events(
            access,
            request.requester.user_id,
            params.get("at"),
            params.get("membership"),
            params.get("not_membership"),
        )
        return Response({"chunk": format_events(members, viewer_of(request), bundle=False)})


class JoinedMembersView(MatrixView):
    """Current members only: a user who left (or a peeker) gets 403, as from Synapse;
    the state at their leave is at GET /members."""

    def get(self, request: Request, room_id: str) -> Response:
        access = access_joined_room(request.requester.user_id, room_id_param(room_id))
        return Response({"joined": state_queries.joined_members(access)})


class RoomInitialSyncView(MatrixView):
    """GET /rooms/{roomId}/initialSync: deprecated, but Element previews rooms with it."""

    allow_guests = True

    def get(self, request: Request, room_id: str) -> Response:
        access = access_room(request.requester.user_id, room_id_param(room_id))
        viewer = viewer_of(request)
        page = paginate(
            access, viewer, None, None, backwards=True, limit=20, event_filter=RoomEventFilter()
        )
        body: JsonDict = {
            "room_id": access.room.room_id,
            "messages": {
                "chunk": list(reversed(page["chunk"])),
                "start": page.get("end", page["start"]),
                "end": page["start"],
            },
            "state": format_events(state_queries.state_events(access), viewer, bundle=False),
            "visibility": "public" if access.room.is_public else "private",
            "account_data": room_account_data(request.requester.user, access.room.room_id),
            "presence": [
                {"type": "m.presence", "sender": user_id, "content": content}
                for user_id, content in current_presence(
                    [] if access.left else state_queries.joined_members(access)
                ).items()
            ],  # users who left share no room with the members: no presence (as Synapse)
        }
        if access.membership is not None:
            body["membership"] = access.membership
        return Response(body)
