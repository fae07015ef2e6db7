"""Membership endpoints: join, invite, leave, forget, kick, ban, unban, knock, joined_rooms."""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

from federation.queries.directory import resolve_remote_alias
from matrixhs.errors import InvalidParam, MissingParam, NotFound
from matrixhs.http import MatrixView, parse_body, parse_json_object, validate
from matrixhs.protocol.ids import is_valid_server_name, server_name_of
from rooms.actions import membership
from rooms.models import RoomAlias, RoomMembership
from rooms.schemas import InviteBody, ReasonBody, TargetBody
from rooms.views import alias_param, room_id_param, user_id_param


def resolve_room(room_id_or_alias: str) -> tuple[str, list[str]]:
    """A room ID, or the room an alias points to, with the servers the alias names to
    join it through (an alias of another server is asked for over federation).

    Raises:
        NotFound: an unknown alias.
    """
    if not room_id_or_alias.startswith("#"):
        return room_id_param(room_id_or_alias), []
    alias = alias_param(room_id_or_alias)
    if server_name_of(alias) != settings.MATRIXHS_SERVER_NAME:
        if not settings.MATRIXHS_FEDERATION_ENABLED:
            raise NotFound("Room alias not found (federation is disabled)")
        return resolve_remote_alias(alias)
    row = RoomAlias.objects.filter(alias=alias).select_related("room").first()
    if row is None:
        raise NotFound("Room alias not found")
    return row.room.room_id, []


def via_servers(request: Request) -> list[str]:
    """The servers a client names to join through: ``via`` (v1.12), or the deprecated
    ``server_name``."""
    names = request.query_params.getlist("via") or request.query_params.getlist("server_name")
    for name in names:
        if not is_valid_server_name(name):
            raise InvalidParam(f"Invalid server name {name!r}")
    return names


class JoinView(MatrixView):
    """POST /join/{roomIdOrAlias} and POST /rooms/{roomId}/join."""

    allow_guests = True
    suspended_refused = ("POST",)

    def post(self, request: Request, room: str) -> Response:
        raw = parse_json_object(request, allow_empty=True)
        body = validate(ReasonBody, raw)
        extra = membership.join_extra_content(raw)
        room_id, servers = resolve_room(room)
        via = [*via_servers(request), *servers]
        membership.do_join(
            request.requester.user, room_id, body.get("reason"), via=via, extra=extra
        )
        return Response({"room_id": room_id})


class KnockView(MatrixView):
    suspended_refused = ("POST",)

    def post(self, request: Request, room: str) -> Response:
        body = parse_body(ReasonBody, request, allow_empty=True)
        room_id, servers = resolve_room(room)
        via = [*via_servers(request), *servers]
        membership.do_knock(request.requester.user, room_id, body.get("reason"), via=via)
        return Response({"room_id": room_id})


class InviteView(MatrixView):
    suspended_refused = ("POST",)

    def post(self, request: Request, room_id: str) -> Response:
        body = parse_body(InviteBody, request)
        invitee = user_id_param(body["user_id"])
        membership.do_invite(
            request.requester.user_id,
            room_id_param(room_id),
            invitee,
            body.get("reason"),
            is_direct=body["is_direct"],
        )
        return Response({})


class LeaveView(MatrixView):
    allow_guests = True

    def post(self, request: Request, room_id: str) -> Response:
        body = parse_body(ReasonBody, request, allow_empty=True)
        membership.do_leave(request.requester.user_id, room_id_param(room_id), body.get("reason"))
        return Response({})


class ForgetView(MatrixView):
    def post(self, request: Request, room_id: str) -> Response:
        membership.do_forget(request.requester.user_id, room_id_param(room_id))
        return Response({})


class _TargetView(MatrixView):
    action = staticmethod(membership.do_kick)

    def post(self, request: Request, room_id: str) -> Response:
        body = parse_body(TargetBody, request)
        target = user_id_param(body["user_id"])
        type(self).action(
            request.requester.user_id, room_id_param(room_id), target, body.get("reason")
        )
        return Response({})


class KickView(_TargetView):
    action = staticmethod(membership.do_kick)


class BanView(_TargetView):
    action = staticmethod(membership.do_ban)


class UnbanView(_TargetView):
    action = staticmethod(membership.do_unban)


class MutualRoomsView(MatrixView):
    """GET /v1/mutual_rooms?user_id=: the rooms both users are joined to (one page)."""

    def get(self, request: Request) -> Response:
        raw = request.query_params.get("user_id")
        if raw is None:
            raise MissingParam("Missing parameter: user_id")
        user_id = user_id_param(raw)
        if user_id == request.requester.user_id:
            raise InvalidParam("user_id is your own user ID")
        if "from" in request.query_params:  # this server never gives a next_batch
            raise InvalidParam("Unknown from token")
        ours = RoomMembership.objects.filter(user_id=request.requester.user_id, membership="join")
        rooms = list(
            RoomMembership.objects.filter(
                user_id=user_id, membership="join", room__in=ours.values("room")
            )
            .order_by("room__room_id")
            .values_list("room__room_id", flat=True)
        )
        return Response({"joined": rooms, "count": len(rooms)})


class JoinedRoomsView(MatrixView):
    allow_guests = True

    def get(self, request: Request) -> Response:
        rooms = RoomMembership.objects.filter(
            user_id=request.requester.user_id, membership="join"
        ).values_list("room__room_id", flat=True)
        return Response({"joined_rooms": list(rooms)})
