"""Room aliases, directory visibility and the published room directory."""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

from federation.queries.directory import remote_public_rooms, resolve_remote_alias
from matrixhs.errors import Codes, InvalidParam, MatrixError, NotFound
from matrixhs.http import MatrixView, parse_body, query_int
from matrixhs.protocol.events import EventTypes
from matrixhs.protocol.ids import is_valid_server_name, server_name_of
from rooms.actions.aliases import check_new_alias, do_create_alias, do_delete_alias
from rooms.actions.directory import check_can_edit_room, do_set_room_visibility
from rooms.models import Room, RoomAlias
from rooms.queries.access import access_joined_room, access_room
from rooms.queries.directory import (
    alias_servers,
    local_aliases,
    public_rooms,
    public_rooms_search,
)
from rooms.queries.hierarchy import room_summary, space_hierarchy
from rooms.queries.user_directory import search_users
from rooms.schemas import AliasBody, PublicRoomsBody, UserDirectorySearchBody, VisibilityBody
from rooms.views import alias_param, room_id_param


def _local_alias(alias: str) -> str:
    alias = alias_param(alias)
    if server_name_of(alias) != settings.MATRIXHS_SERVER_NAME:
        raise InvalidParam("Aliases of other servers are managed on their server")
    return alias


class AliasView(MatrixView):
    anonymous_methods = ("GET",)
    suspended_refused = ("PUT", "DELETE")

    def get(self, request: Request, alias: str) -> Response:
        alias = alias_param(alias)
        if server_name_of(alias) != settings.MATRIXHS_SERVER_NAME:
            if not settings.MATRIXHS_FEDERATION_ENABLED:
                raise NotFound("Room alias not found (federation is disabled)")
            room_id, servers = resolve_remote_alias(alias)
            return Response({"room_id": room_id, "servers": servers})
        room = _aliased_room(alias)
        return Response({"room_id": room.room_id, "servers": alias_servers(room)})

    def put(self, request: Request, alias: str) -> Response:
        body = parse_body(AliasBody, request)
        alias = check_new_alias(_local_alias(alias), for_directory=True)
        access = access_joined_room(request.requester.user_id, room_id_param(body["room_id"]))
        do_create_alias(alias, access.room, request.requester.user_id, for_directory=True)
        return Response({})

    def delete(self, request: Request, alias: str) -> Response:
        row = RoomAlias.objects.select_related("room").filter(alias=_local_alias(alias)).first()
        if row is None:
            raise NotFound("Room alias not found")
        requester = request.requester
        if row.creator != requester.user_id and not requester.user.is_admin:
            check_can_edit_room(row.room, requester.user_id, EventTypes.CANONICAL_ALIAS)
        do_delete_alias(row, requester.user_id)
        return Response({})


class RoomAliasesView(MatrixView):
    def get(self, request: Request, room_id: str) -> Response:
        access = access_room(request.requester.user_id, room_id_param(room_id), allow_left=False)
        return Response({"aliases": local_aliases(access.room)})


class RoomVisibilityView(MatrixView):
    anonymous_methods = ("GET",)

    def get(self, request: Request, room_id: str) -> Response:
        room = Room.objects.filter(room_id=room_id_param(room_id)).first()
        if room is None:
            raise NotFound("Room not found")
        return Response({"visibility": "public" if room.is_public else "private"})

    def put(self, request: Request, room_id: str) -> Response:
        body = parse_body(VisibilityBody, request)
        room = Room.objects.filter(room_id=room_id_param(room_id)).first()
        if room is None:
            raise NotFound("Room not found")
        if not request.requester.user.is_admin:
            check_can_edit_room(room, request.requester.user_id, EventTypes.CANONICAL_ALIAS)
        do_set_room_visibility(room, body["visibility"] == "public")
        return Response({})


def _remote_server(request: Request) -> str | None:
    """The ``server`` whose directory is asked for, when it is not this one."""
    server = request.query_params.get("server")
    if server is None or server == settings.MATRIXHS_SERVER_NAME:
        return None
    if not is_valid_server_name(server):
        raise InvalidParam("server is not a server name")
    return server


class PublicRoomsView(MatrixView):
    anonymous_methods = ("GET",)

    def get(self, request: Request) -> Response:
        limit = query_int(request, "limit", 0, minimum=0) or None
        since = request.query_params.get("since")
        server = _remote_server(request)
        if server is not None:
            if request.requester is None:
                raise MatrixError(401, Codes.MISSING_TOKEN, "Sign in to list other servers' rooms")
            query = {k: v for k, v in (("limit", limit), ("since", since)) if v is not None}
            return Response(remote_public_rooms(server, query))
        return Response(public_rooms(limit, since, None, None))

    def post(self, request: Request) -> Response:
        body = parse_body(PublicRoomsBody, request, allow_empty=True)
        server = _remote_server(request)
        if server is not None:
            return Response(remote_public_rooms(server, body))
        return Response(public_rooms_search(body))


class UserDirectorySearchView(MatrixView):
    def post(self, request: Request) -> Response:
        body = parse_body(UserDirectorySearchBody, request)
        return Response(
            search_users(request.requester.user_id, body["search_term"], body.get("limit", 10))
        )


class HierarchyView(MatrixView):
    """GET /v1/rooms/{roomId}/hierarchy."""

    def get(self, request: Request, room_id: str) -> Response:
        params = request.query_params
        suggested = params.get("suggested_only", "false")
        if suggested not in ("true", "false"):
            raise InvalidParam("suggested_only must be true or false")
        limit = query_int(request, "limit", 0, minimum=1) if "limit" in params else None
        max_depth = query_int(request, "max_depth", 0) if "max_depth" in params else None
        return Response(
            space_hierarchy(
                request.requester.user_id,
                room_id_param(room_id),
                limit,
                max_depth,
                suggested == "true",
                params.get("from"),
            )
        )


class RoomSummaryView(MatrixView):
    """GET /v1/room_summary/{roomIdOrAlias} (and the MSC3266 paths clients use)."""

    anonymous_methods = ("GET",)

    def get(self, request: Request, room: str) -> Response:
        if room.startswith("#"):
            room_id = _aliased_room(alias_param(room)).room_id
        else:
            room_id = room_id_param(room)
        requester = request.requester
        return Response(room_summary(requester.user_id if requester else None, room_id))


def _aliased_room(alias: str) -> Room:
    """Raises: NotFound: no such local alias."""
    row = RoomAlias.objects.select_related("room").filter(alias=alias).first()
    if row is None:
        raise NotFound("Room alias not found")
    return row.room
