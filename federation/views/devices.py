"""What other servers ask about our users' devices and keys, for end-to-end encryption:
GET /user/devices/{userId}, POST /user/keys/query and /user/keys/claim."""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

from e2ee.actions.keys import check_claim_request, do_claim_one_time_keys
from e2ee.queries import check_keys_query, device_list_for_server, local_keys_for_server
from federation.auth import FederationView
from matrixhs.errors import MissingParam
from matrixhs.http import user_id_param
from matrixhs.protocol.ids import server_name_of


def _ours(users: dict[str, object]) -> list[str]:
    here = settings.MATRIXHS_SERVER_NAME
    return [u for u in users if ":" in u and server_name_of(u) == here]


class UserDevicesView(FederationView):
    """GET /_matrix/federation/v1/user/devices/{userId}."""

    def get(self, request: Request, user_id: str) -> Response:
        return Response(device_list_for_server(user_id_param(user_id)))


class UserKeysQueryView(FederationView):
    """POST /_matrix/federation/v1/user/keys/query."""

    takes_body = True

    def post(self, request: Request) -> Response:
        if "device_keys" not in self.body:
            raise MissingParam("Missing device_keys")
        query = check_keys_query(self.body["device_keys"])
        return Response(local_keys_for_server({u: query[u] for u in _ours(query)}))


class UserKeysClaimView(FederationView):
    """POST /_matrix/federation/v1/user/keys/claim."""

    takes_body = True

    def post(self, request: Request) -> Response:
        if "one_time_keys" not in self.body:
            raise MissingParam("Missing one_time_keys")
        claims = check_claim_request(self.body["one_time_keys"])
        local = {u: claims[u] for u in _ours(claims)}
        return Response({"one_time_keys": do_claim_one_time_keys(local)})
