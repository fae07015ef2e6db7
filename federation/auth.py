"""Authentication of inbound federation requests, and the base of every federation view.

Every request another server makes carries an ``X-Matrix`` Authorization header (spec
server-server API "Request Authentication"): the origin signs a JSON object of the method,
the URI as sent (path and query string, still percent-encoded), origin, destination and,
when there is a body, the body as ``content``. ``authenticate_request`` rebuilds that
object and checks the signature with the origin's key from ``federation.keys.
server_keys()``; anything else is 401 M_UNAUTHORIZED before the view runs, so a refused
request has no side effect.

``verify_event`` is the signature check every event from another server goes through
(the ``Verifier`` of federation.actions.inbound), with the same key store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.views import APIView

from federation.keys import server_keys
from matrixhs.errors import Codes, Forbidden, JsonDict, MatrixError, Unrecognized
from matrixhs.http import MatrixView, parse_json_bytes, raw_body
from matrixhs.protocol.ids import is_valid_server_name
from matrixhs.protocol.room_versions import RoomVersion
from matrixhs.protocol.signing import (
    InvalidSignature,
    required_signature_servers,
    verify_event_signed_by,
    verify_json,
)
from matrixhs.time import now_ms

_PARAM_RE = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s"]*))\s*(?:,|$)')


class Unauthorized(MatrixError):
    def __init__(self, msg: str) -> None:
        super().__init__(401, Codes.UNAUTHORIZED, msg)


def parse_x_matrix(header: str) -> dict[str, str]:
    """The parameters of an ``X-Matrix`` Authorization header (names lower-cased).

    Raises:
        Unauthorized: not X-Matrix, or origin, key or sig missing.
    """
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "x-matrix":
        raise Unauthorized("Missing X-Matrix authorization")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PARAM_RE.match(rest, pos)
        if match is None or match.end() == pos:
            raise Unauthorized("Malformed X-Matrix authorization")
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params[match.group(1).lower()] = value
        pos = match.end()
    if not all(params.get(name) for name in ("origin", "key", "sig")):
        raise Unauthorized("X-Matrix authorization needs origin, key and sig")
    return params


def request_uri(request: Request) -> str:
    """The request target as the client sent it: the raw path (percent-encoding kept, as
    the origin signed it) and the query string."""
    scope = getattr(request, "scope", None) or {}
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.get_full_path()
    path = path.split("?", 1)[0]
    query = request.META.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def authenticate_request(request: Request, content: Any = None) -> str:
    """The origin server of an inbound federation request, once its signature verifies.

    ``content``: the parsed JSON body, for requests that have one.

    Raises:
        Unauthorized: no, malformed or unverifiable X-Matrix authorization.
        Forbidden: addressed to another server.
    """
    params = parse_x_matrix(request.META.get("HTTP_AUTHORIZATION", ""))
    origin, key = params["origin"], params["key"]
    if not is_valid_server_name(origin):
        raise Unauthorized("Invalid origin")
    destination = params.get("destination")
    if destination is not None and destination != settings.MATRIXHS_SERVER_NAME:
        raise Unauthorized("The request is for another server")
    known = server_keys().get_verify_key(origin, key)
    if known is None:
        raise Unauthorized(f"Unknown key {key} of {origin}")
    if known.valid_until_ts is not None and known.valid_until_ts < now_ms():
        raise Unauthorized(f"The key {key} of {origin} has expired")
    signed: JsonDict = {
        "method": request.method,
        "uri": request_uri(request),
        "origin": origin,
        "destination": destination if destination is not None else settings.MATRIXHS_SERVER_NAME,
        "signatures": {origin: {key: params["sig"]}},
    }
    if content is not None:
        signed["content"] = content
    try:
        verify_json(signed, origin, known.verify_key)
    except InvalidSignature as exc:
        raise Unauthorized("Invalid X-Matrix signature") from exc
    return origin


def verify_event(pdu: Mapping[str, Any], rv: RoomVersion) -> None:
    """Check every signature the event needs, with the servers' keys.

    Raises:
        InvalidSignature: one of them is missing or does not verify.
    """
    keys = server_keys()
    for server_name in sorted(required_signature_servers(pdu, rv)):
        verify_event_signed_by(pdu, server_name, keys, rv)


class FederationView(MatrixView):
    """Base of the federation API views: the request is authenticated as coming from
    ``self.origin`` (and, for a request with a body, ``self.body`` is its JSON object)
    before the handler runs. Answers 404 M_UNRECOGNIZED while federation is disabled."""

    requires_auth = False
    rate_limit = None
    #: Whether the body must be a JSON object (PUT/POST endpoints).
    takes_body = False

    origin: str
    body: JsonDict

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # No client authentication (MatrixView.initial): the X-Matrix header is the only one.
        APIView.initial(self, request, *args, **kwargs)
        request.requester = None  # type: ignore[attr-defined]
        if not settings.MATRIXHS_FEDERATION_ENABLED:
            raise Unrecognized("Federation is disabled on this server")
        content = None
        if request.method in ("PUT", "POST"):
            # The header is checked first: an unsigned request gets 401, whatever its body.
            parse_x_matrix(request.META.get("HTTP_AUTHORIZATION", ""))
            raw = raw_body(request)
            if raw.strip() or self.takes_body:
                content = parse_json_bytes(raw)
        self.origin = authenticate_request(request, content)
        self.body = content if isinstance(content, dict) else {}
        from federation.actions.outbound import wake_senders
        from federation.actions.sending import mark_reachable

        if mark_reachable(self.origin):
            wake_senders([self.origin])


def require_same_server(user_id: str, origin: str) -> None:
    """A request about one of the origin's own users (make_join and such)."""
    from matrixhs.protocol.ids import server_name_of

    if server_name_of(user_id) != origin:
        raise Forbidden("The user is not on the requesting server")
