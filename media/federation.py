"""Authentication of the federation media endpoints: the ONE hook they call.

``authenticate_federation_request`` checks the request's X-Matrix Authorization header
(spec server-server "Request Authentication"): the signed request JSON (method, uri,
origin, destination) must verify with the origin's key. The federation transport
(inbound view base and remote key fetching) will replace this module's key lookup,
``origin_verify_key``: until then the only keys known are this server's own, so requests
from any other server are refused with 401.
"""

from __future__ import annotations

import re

from django.conf import settings
from rest_framework.request import Request
from signedjson.key import get_verify_key
from signedjson.sign import SignatureVerifyException, verify_signed_json
from signedjson.types import VerifyKey

from federation.keys import get_signing_key, key_id
from matrixhs.errors import Codes, Forbidden, MatrixError

_PARAM_RE = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s"]*))\s*(?:,|$)')


class Unauthorized(MatrixError):
    def __init__(self, msg: str) -> None:
        super().__init__(401, Codes.UNAUTHORIZED, msg)


def parse_x_matrix(header: str) -> dict[str, str]:
    """The parameters of an ``X-Matrix`` Authorization header.

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


def origin_verify_key(origin: str, key: str) -> VerifyKey | None:
    """The verify key ``key`` of server ``origin``, or None if unknown.

    Only this server's own key is known until remote keys are fetched by the federation
    transport; that is the line to change when it lands.
    """
    signing_key = get_signing_key()
    if origin == settings.MATRIXHS_SERVER_NAME and key == key_id(signing_key):
        return get_verify_key(signing_key)
    return None


def authenticate_federation_request(request: Request) -> str:
    """The origin server of an inbound federation request, once its signature verifies.

    Raises:
        Unauthorized: no, malformed or unverifiable X-Matrix authorization.
        Forbidden: addressed to another server.
    """
    params = parse_x_matrix(request.META.get("HTTP_AUTHORIZATION", ""))
    origin, key = params["origin"], params["key"]
    destination = params.get("destination")
    if destination is not None and destination != settings.MATRIXHS_SERVER_NAME:
        raise Forbidden("Request is for another server")
    verify_key = origin_verify_key(origin, key)
    if verify_key is None:
        raise Unauthorized(f"Unknown key {key} of {origin}")
    signed = {
        "method": request.method,
        "uri": request.get_full_path(),
        "origin": origin,
        "signatures": {origin: {key: params["sig"]}},
    }
    if destination is not None:
        signed["destination"] = destination
    try:
        verify_signed_json(signed, origin, verify_key)
    except SignatureVerifyException as exc:
        raise Unauthorized("Invalid X-Matrix signature") from exc
    return origin
