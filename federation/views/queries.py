"""What other servers ask about this server's users, aliases and public rooms:
/query/profile, /query/directory and /publicRooms of the federation API."""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.actions.openid import openid_user
from accounts.queries import get_profile
from federation.auth import FederationView
from matrixhs.errors import (
    Codes,
    Forbidden,
    InvalidParam,
    MatrixError,
    MissingParam,
    NotFound,
    Unrecognized,
)
from matrixhs.http import MatrixView, alias_param, parse_body, query_int, user_id_param
from matrixhs.protocol.ids import server_name_of
from rooms.models import RoomAlias
from rooms.queries.directory import alias_servers, public_rooms, public_rooms_search
from rooms.schemas import PublicRoomsBody

PROFILE_FIELDS = ("displayname", "avatar_url")


def _required(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if value is None:
        raise MissingParam(f"Missing {name}")
    return value


class QueryProfileView(FederationView):
    """GET /_matrix/federation/v1/query/profile?user_id=...&field=..."""

    def get(self, request: Request) -> Response:
        user_id = user_id_param(_required(request, "user_id"))
        if server_name_of(user_id) != settings.MATRIXHS_SERVER_NAME:
            raise InvalidParam("The user is not on this server")
        field = request.query_params.get("field")
        if field is not None and field not in PROFILE_FIELDS:
            raise InvalidParam("field must be displayname or avatar_url")
        profile = get_profile(user_id)
        if field is not None:
            profile = {field: profile[field]} if field in profile else {}
        return Response(profile)


class QueryDirectoryView(FederationView):
    """GET /_matrix/federation/v1/query/directory?room_alias=..."""

    def get(self, request: Request) -> Response:
        alias = alias_param(_required(request, "room_alias"))
        row = RoomAlias.objects.select_related("room").filter(alias=alias).first()
        if row is None or server_name_of(alias) != settings.MATRIXHS_SERVER_NAME:
            raise NotFound("Room alias not found")
        return Response({"room_id": row.room.room_id, "servers": alias_servers(row.room)})


class PublicRoomsView(FederationView):
    """GET and POST /_matrix/federation/v1/publicRooms (when the setting allows it)."""

    def initial(self, request: Request, *args: object, **kwargs: object) -> None:
        super().initial(request, *args, **kwargs)
        if not settings.MATRIXHS_ALLOW_PUBLIC_ROOMS_OVER_FEDERATION:
            raise Forbidden("This server does not share its room directory")

    def get(self, request: Request) -> Response:
        limit = query_int(request, "limit", 0, minimum=0) or None
        return Response(public_rooms(limit, request.query_params.get("since"), None, None))

    def post(self, request: Request) -> Response:
        return Response(public_rooms_search(parse_body(PublicRoomsBody, request, allow_empty=True)))


class OpenIdUserInfoView(MatrixView):
    """GET /_matrix/federation/v1/openid/userinfo?access_token=: who an OpenID token
    belongs to. Called by third parties, not servers: no X-Matrix, the token is the proof.
    """

    requires_auth = False
    client_tokens = False

    def get(self, request: Request) -> Response:
        if not settings.MATRIXHS_FEDERATION_ENABLED:
            raise Unrecognized("Federation is disabled on this server")
        user_id = openid_user(_required(request, "access_token"))
        if user_id is None:
            raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Unknown or expired OpenID token")
        return Response({"sub": user_id})
