"""This server's identity: its keys (GET /_matrix/key/v2/server), the notary endpoints
that hand on other servers' keys countersigned (/_matrix/key/v2/query), and
GET /_matrix/federation/v1/version. None of them needs authentication."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from federation.keys import notary_responses, own_keys_response
from matrixhs.errors import BadJson, InvalidParam, Unrecognized
from matrixhs.http import MatrixView, parse_json_object
from matrixhs.protocol.canonical_json import encode_canonical_json
from matrixhs.protocol.ids import is_valid_server_name


class KeyView(MatrixView):
    requires_auth = False
    rate_limit = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not settings.MATRIXHS_FEDERATION_ENABLED:
            raise Unrecognized("Federation is disabled on this server")


class ServerKeysView(KeyView):
    """GET /_matrix/key/v2/server (and the deprecated /server/{keyId}: all keys anyway),
    in canonical JSON: a reader may check the signature over the body as it came."""

    def get(self, request: Request, key_id: str | None = None) -> HttpResponse:
        return HttpResponse(
            encode_canonical_json(own_keys_response()), content_type="application/json"
        )


def _minimum_valid_until(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParam("minimum_valid_until_ts must be an integer")
    return value


class KeyQueryView(KeyView):
    """POST /_matrix/key/v2/query: keys of several servers, countersigned."""

    def post(self, request: Request) -> Response:
        body = parse_json_object(request)
        wanted = body.get("server_keys")
        if not isinstance(wanted, dict):
            raise BadJson("server_keys must be an object")
        criteria: dict[str, tuple[set[str], int]] = {}
        for server_name, keys in wanted.items():
            if not is_valid_server_name(server_name) or not isinstance(keys, dict):
                raise BadJson(f"Bad query for {server_name!r}")
            minimum = 0
            for name, criterion in keys.items():
                if not isinstance(criterion, dict):
                    raise BadJson(f"Bad criteria for {name!r}")
                minimum = max(
                    minimum, _minimum_valid_until(criterion.get("minimum_valid_until_ts"))
                )
            criteria[server_name] = (set(keys), minimum)
        return Response({"server_keys": notary_responses(criteria)})


class KeyQueryServerView(KeyView):
    """GET /_matrix/key/v2/query/{serverName}: one server's keys, countersigned."""

    def get(self, request: Request, server_name: str) -> Response:
        if not is_valid_server_name(server_name):
            raise InvalidParam("Invalid server name")
        raw = request.query_params.get("minimum_valid_until_ts")
        try:
            minimum = int(raw) if raw is not None else 0
        except ValueError as exc:
            raise InvalidParam("minimum_valid_until_ts must be an integer") from exc
        return Response({"server_keys": notary_responses({server_name: (set(), minimum)})})


class FederationVersionView(KeyView):
    """GET /_matrix/federation/v1/version."""

    def get(self, request: Request) -> Response:
        try:
            ours = version("matrixhs")
        except PackageNotFoundError:
            ours = "0.1.0"
        return Response({"server": {"name": "matrixhs", "version": ours}})
