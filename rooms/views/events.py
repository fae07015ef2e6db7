"""Sending and reading events: send, state, redact, event, messages, context, members."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.queries import room_account_data
from federation.actions.backfill import backfill, holes_between
from matrixhs.errors import Forbidden, InvalidParam, JsonDict, MissingParam, NotFound
from matrixhs.filters import RoomEventFilter
from matrixhs.http import MatrixView, parse_body, parse_json_object, query_int
from matrixhs.protocol.events import EventTypes
from rooms.actions.send import do_redact, do_send_message, do_send_state
from rooms.models import Event
from rooms.queries import state as state_queries
from rooms.queries.access import RoomAccess, access_event, access_joined_room, access_room
from rooms.queries.format import format_event, format_events
from rooms.queries.timeline import context, event_at_timestamp, paginate, parse_token
from rooms.queries.visibility import sent_by_ignored, with_ignored
from rooms.schemas import ReasonBody
from rooms.views import event_id_param, room_id_param, viewer_of
from sync.presence import current_presence


class SendView(MatrixView):
    allow_guests = True
    suspended_refused = ("PUT",)

    def refused_when_suspended(self, request: Request, kwargs: dict[str, Any]) -> bool:
        # A suspended user may still redact their own events (spec "Account suspension").
        return kwargs.get("event_type") != EventTypes.REDACTION

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
    suspended_refused = ("PUT",)

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
        viewer = with_ignored(viewer_of(request))
        if sent_by_ignored(event, viewer.ignored or frozenset()):  # spec "Ignoring Users"
            raise NotFound("Event not found")
        return Response(format_event(event, viewer))


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
        # Paging back past the oldest events we have, or across a hole in what we have
        # (what the room said while this server was out of it): the room's other servers
        # may have the missing events. A page with a hole under it (the nearest first)
        # asks for them and is read again, a bounded number of times.
        for _ in range(BACKFILL_ROUNDS if direction == "b" else 0):
            holes = _holes_in_page(access, body)
            if not holes or backfill(access.room, holes, limit) == 0:
                break
            body = page()
        return Response(body)


def _holes_in_page(access: RoomAccess, body: JsonDict) -> list[str]:
    """Holes (:func:`holes_between`) under a backwards page: between its oldest event
    (or, when it reached the oldest we have, the bottom of the room) and where it
    started."""
    if not settings.MATRIXHS_FEDERATION_ENABLED:
        return []
    end = body.get("end")
    floor = parse_token(Event.objects.none(), end).depth if end else -1
    start = body.get("start", "")
    ceiling = parse_token(Event.objects.none(), start).depth if start.startswith("t") else None
    return holes_between(access.room, floor, ceiling)


class ContextView(MatrixView):
    allow_guests = True

    def get(self, request: Request, room_id: str, event_id: str) -> Response:
        access = access_room(request.requester.user_id, room_id_param(room_id))
        event = access_event(access, request.requester.user_id, event_id_param(event_id))
        viewer = with_ignored(viewer_of(request))
        if sent_by_ignored(event, viewer.ignored or frozenset()):  # spec "Ignoring Users"
            raise NotFound("Event not found")
        limit = query_int(request, "limit", 10, minimum=0)
        event_filter = RoomEventFilter.from_query(request.query_params.get("filter"))
        return Response(context(access, viewer, event, min(limit, 100), event_filter))


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
