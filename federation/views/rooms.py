"""The federation API of rooms: transactions, joining, leaving, knocking and inviting
through this server, and reading the room graph (state, events, auth chains, backfill,
missing events).

Each view is a thin shell: the request is authenticated as coming from ``self.origin``
(federation.auth), the path and body are parsed here, and the work is done by
federation.actions (writes) and federation.queries (reads), which apply the room's
server ACL and what ``origin`` may see.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

from federation import peers
from federation.actions import remote_rooms, resident
from federation.actions.transactions import receive_transaction
from federation.auth import FederationView, require_same_server, verify_event
from federation.queries import graph
from federation.queries.events import state_and_auth_chain
from matrixhs.errors import BadJson, Forbidden, InvalidParam, JsonDict, MissingParam
from matrixhs.http import event_id_param, query_int, room_id_param, user_id_param
from matrixhs.protocol.events import Membership
from matrixhs.time import now_ms
from rooms.models import Room

#: Limits of one transaction (server-server API "Transactions").
MAX_PDUS = 50
MAX_EDUS = 100
#: Most events one backfill or get_missing_events answer holds.
MAX_EVENTS_PER_REQUEST = 100


def _origin_ts() -> JsonDict:
    return {"origin": settings.MATRIXHS_SERVER_NAME, "origin_server_ts": now_ms()}


def _acl_room(room_id: str, origin: str) -> Room | None:
    """The room if we know it; 403 when its server ACL denies ``origin``."""
    room = Room.objects.filter(room_id=room_id).first()
    if room is not None and not graph.acl_allows(room, origin):
        raise Forbidden("Server is banned from the room by its ACL")
    return room


# --- transactions ------------------------------------------------------------------------


class SendTransactionView(FederationView):
    """PUT /_matrix/federation/v1/send/{txnId}."""

    takes_body = True

    def put(self, request: Request, txn_id: str) -> Response:
        body = self.body
        pdus, edus = body.get("pdus", []), body.get("edus", [])
        if not isinstance(pdus, list) or not isinstance(edus, list):
            raise BadJson("pdus and edus must be lists")
        if len(pdus) > MAX_PDUS or len(edus) > MAX_EDUS:
            raise BadJson(f"A transaction holds at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs")
        if body.get("origin", self.origin) != self.origin:
            raise Forbidden("The transaction's origin is not the server that sent it")
        if len(txn_id) > 255:
            raise InvalidParam("Transaction ID too long")
        return Response(
            receive_transaction(self.origin, txn_id, pdus, peers.remote(), verify_event, edus)
        )


# --- joining, leaving, knocking, inviting --------------------------------------------------


def _versions(request: Request, required: bool) -> list[str]:
    versions = request.query_params.getlist("ver")
    if required and not versions:
        # A server that names no version supports room version 1 only (spec make_join).
        return ["1"]
    return versions


class MakeMembershipView(FederationView):
    """GET /make_join/{roomId}/{userId}, /make_leave/..., /make_knock/... (v1)."""

    membership = Membership.JOIN

    def get(self, request: Request, room_id: str, user_id: str) -> Response:
        room_id, user_id = room_id_param(room_id), user_id_param(user_id)
        require_same_server(user_id, self.origin)
        _acl_room(room_id, self.origin)
        versions = _versions(request, self.membership != Membership.LEAVE)
        if self.membership == Membership.KNOCK and not request.query_params.getlist("ver"):
            raise MissingParam("Missing ver")
        return Response(
            resident.make_membership(self.origin, room_id, user_id, self.membership, versions)
        )


class SendMembershipView(FederationView):
    """PUT /send_join/{roomId}/{eventId} (v2), /send_leave (v2), /send_knock (v1)."""

    membership = Membership.JOIN
    takes_body = True

    def put(self, request: Request, room_id: str, event_id: str) -> Response:
        room_id, event_id = room_id_param(room_id), event_id_param(event_id)
        _acl_room(room_id, self.origin)
        answer = resident.send_membership(
            self.origin, room_id, event_id, self.body, self.membership, peers.remote(), verify_event
        )
        return Response(answer)


class InviteView(FederationView):
    """PUT /_matrix/federation/v2/invite/{roomId}/{eventId}."""

    takes_body = True

    def put(self, request: Request, room_id: str, event_id: str) -> Response:
        room_id, event_id = room_id_param(room_id), event_id_param(event_id)
        _acl_room(room_id, self.origin)
        return Response(
            remote_rooms.receive_invite(self.origin, room_id, event_id, self.body, verify_event)
        )


# --- reading the room graph ----------------------------------------------------------------


def _event_id_query(request: Request) -> str:
    value = request.query_params.get("event_id")
    if value is None:
        raise MissingParam("Missing event_id")
    return event_id_param(value)


class StateView(FederationView):
    """GET /_matrix/federation/v1/state/{roomId}?event_id=: the state before the event and
    its auth chain."""

    def get(self, request: Request, room_id: str) -> Response:
        room = graph.access_room_for_server(room_id_param(room_id), self.origin)
        state = graph.state_before_event(room, _event_id_query(request))
        answer = state_and_auth_chain(room, state)
        return Response({"pdus": answer["state"], "auth_chain": answer["auth_chain"]})


class StateIdsView(FederationView):
    """GET /_matrix/federation/v1/state_ids/{roomId}?event_id=."""

    def get(self, request: Request, room_id: str) -> Response:
        room = graph.access_room_for_server(room_id_param(room_id), self.origin)
        state_ids, chain_ids = graph.state_ids_at(room, _event_id_query(request))
        return Response({"pdu_ids": state_ids, "auth_chain_ids": chain_ids})


class EventView(FederationView):
    """GET /_matrix/federation/v1/event/{eventId}."""

    def get(self, request: Request, event_id: str) -> Response:
        pdu = graph.event_for_server(self.origin, event_id_param(event_id))
        return Response({**_origin_ts(), "pdus": [pdu]})


class EventAuthView(FederationView):
    """GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}."""

    def get(self, request: Request, room_id: str, event_id: str) -> Response:
        room = graph.access_room_for_server(room_id_param(room_id), self.origin)
        return Response({"auth_chain": graph.event_auth_for_server(room, event_id_param(event_id))})


class BackfillView(FederationView):
    """GET /_matrix/federation/v1/backfill/{roomId}?v=...&limit=."""

    def get(self, request: Request, room_id: str) -> Response:
        room = graph.access_room_for_server(room_id_param(room_id), self.origin)
        starts = [event_id_param(v) for v in request.query_params.getlist("v")]
        if not starts:
            raise MissingParam("Missing v")
        limit = min(query_int(request, "limit", 10, minimum=0), MAX_EVENTS_PER_REQUEST)
        pdus = graph.backfill_for_server(room, self.origin, starts, limit)
        return Response({**_origin_ts(), "pdus": pdus})


class GetMissingEventsView(FederationView):
    """POST /_matrix/federation/v1/get_missing_events/{roomId}."""

    takes_body = True

    def post(self, request: Request, room_id: str) -> Response:
        room = graph.access_room_for_server(room_id_param(room_id), self.origin)
        body = self.body
        earliest, latest = body.get("earliest_events", []), body.get("latest_events")
        if not isinstance(latest, list) or not isinstance(earliest, list):
            raise BadJson("earliest_events and latest_events must be lists of event IDs")
        earliest = [event_id_param(e) for e in earliest]
        latest = [event_id_param(e) for e in latest]
        limit, min_depth = body.get("limit", 10), body.get("min_depth", 0)
        if type(limit) is not int or type(min_depth) is not int or limit < 0:
            raise BadJson("limit and min_depth must be integers")
        limit = min(limit, MAX_EVENTS_PER_REQUEST)
        events = graph.missing_events_for_server(
            room, self.origin, earliest, latest, limit, min_depth
        )
        return Response({"events": events})
