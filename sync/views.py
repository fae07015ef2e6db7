"""Client API views of the sync app besides /sync itself (sync/consumers.py): filters,
presence, and the start-up lookups VoIP and third-party networks. Views parse, call
sync.filters / sync.presence, and answer."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from accounts.queries import access_own_user
from matrixhs.errors import NotFound
from matrixhs.filters import Filter
from matrixhs.http import MatrixView, parse_body, parse_json_object, user_id_param
from matrixhs.time import now_ms
from sync import presence
from sync.filters import do_create_filter, get_filter_definition
from sync.schemas import PresenceBody
from sync.voip import turn_credentials

# --- Filters ------------------------------------------------------------------------------


class FilterCreateView(MatrixView):
    def post(self, request: Request, user_id: str) -> Response:
        access_own_user(request.requester, user_id)
        definition = parse_json_object(request)
        Filter.parse(definition)
        return Response({"filter_id": do_create_filter(request.requester.user, definition)})


class FilterView(MatrixView):
    def get(self, request: Request, user_id: str, filter_id: str) -> Response:
        access_own_user(request.requester, user_id)
        return Response(get_filter_definition(request.requester.user, filter_id))


# --- Presence -----------------------------------------------------------------------------


class PresenceStatusView(MatrixView):
    def get(self, request: Request, user_id: str) -> Response:
        user_id = user_id_param(user_id)
        presence.access_presence(request.requester.user_id, user_id)
        return Response(presence.current_presence([user_id])[user_id])

    def put(self, request: Request, user_id: str) -> Response:
        access_own_user(request.requester, user_id_param(user_id))
        body = parse_body(PresenceBody, request)
        presence.do_set_presence(request.requester.user, body["presence"], body.get("status_msg"))
        return Response({})


# --- VoIP and third-party networks ------------------------------------------------------------


class TurnServerView(MatrixView):
    allow_guests = True

    def get(self, request: Request) -> Response:
        return Response(turn_credentials(request.requester.user_id, now_ms()))


class ThirdPartyProtocolsView(MatrixView):
    """No application services yet, so no third-party protocols."""

    allow_guests = True

    def get(self, request: Request) -> Response:
        return Response({})


class ThirdPartyProtocolView(MatrixView):
    allow_guests = True

    def get(self, request: Request, protocol: str) -> Response:
        raise NotFound("Unknown protocol")
