"""Requests to other servers: the ``FederationClient`` of federation.peers.

Each request goes to the address server discovery gives (federation.transport.discovery),
over TLS verified against the system CAs plus MATRIXHS_FEDERATION_CA_FILE, through
matrixhs.outbound (private and loopback addresses refused after DNS resolution unless in
MATRIXHS_FEDERATION_IP_ALLOWLIST), within MATRIXHS_FEDERATION_TIMEOUT_S, and is signed
with X-Matrix (origin, destination, key, signature over method, URI and content).

An error answer becomes a MatrixError: 400, 403 and 404 keep the remote errcode (the
remote server refused, and says why); anything else, and an unreachable server, is 502
M_UNKNOWN.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from django.conf import settings

from federation.keys import get_signing_key, key_id
from federation.transport.discovery import (
    ServerAddress,
    SrvLookup,
    fetch_well_known,
    resolve_server,
    srv_lookup,
)
from matrixhs.errors import Codes, JsonDict, MatrixError
from matrixhs.outbound import outbound_client
from matrixhs.protocol.signing import sign_json

logger = logging.getLogger(__name__)

FED = "/_matrix/federation"
#: The largest answer read (a send_join of a big room is tens of MB).
MAX_RESPONSE_BYTES = 100 * 1024 * 1024
#: Errors of the remote server passed on with its errcode.
PASSED_ON = (400, 403, 404)


class FederationRequestFailed(MatrixError):
    """The server could not be reached, or answered something other than JSON."""

    def __init__(self, destination: str, reason: str) -> None:
        super().__init__(502, Codes.UNKNOWN, f"{destination}: {reason}")


def _p(value: str) -> str:
    """A path segment, percent-encoded (IDs carry ``!``, ``$``, ``:``, ``@``...)."""
    return quote(value, safe="")


def x_matrix_authorization(method: str, uri: str, destination: str, content: Any = None) -> str:
    """The Authorization header of a request this server makes."""
    origin = settings.MATRIXHS_SERVER_NAME
    key = get_signing_key()
    request: JsonDict = {
        "method": method,
        "uri": uri,
        "origin": origin,
        "destination": destination,
    }
    if content is not None:
        request["content"] = content
    signature = sign_json(request, origin, key)["signatures"][origin][key_id(key)]
    return (
        f'X-Matrix origin="{origin}",destination="{destination}",'
        f'key="{key_id(key)}",sig="{signature}"'
    )


def ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.MATRIXHS_FEDERATION_CA_FILE:
        context.load_verify_locations(cafile=settings.MATRIXHS_FEDERATION_CA_FILE)
    return context


class HttpFederationClient:
    """Signed requests over HTTPS (see the module docstring)."""

    def __init__(self, http: httpx.Client | None = None, srv: SrvLookup = srv_lookup) -> None:
        timeout = settings.MATRIXHS_FEDERATION_TIMEOUT_S
        self.http = http or outbound_client(
            ssl_context(),
            allow_extra=settings.MATRIXHS_FEDERATION_IP_ALLOWLIST,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
        )
        self.srv = srv

    # --- plumbing ---------------------------------------------------------------------

    def address(self, destination: str) -> ServerAddress:
        return resolve_server(destination, lambda h: fetch_well_known(h, self.http), self.srv)

    @contextmanager
    def _stream(
        self,
        method: str,
        destination: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
        signed: bool = True,
    ) -> Iterator[httpx.Response]:
        """Send a request; the answer streams while the block runs.

        Raises:
            FederationRequestFailed: the server could not be found or reached.
        """
        uri = path + (f"?{urlencode(query, doseq=True)}" if query else "")
        try:
            address = self.address(destination)
        except ValueError as exc:
            raise FederationRequestFailed(destination, str(exc)) from exc
        headers = {"Host": address.host_header}
        if signed:
            headers["Authorization"] = x_matrix_authorization(method, uri, destination, body)
        content = None
        if body is not None:
            content = json.dumps(body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        host = f"[{address.host}]" if ":" in address.host else address.host
        try:
            with self.http.stream(
                method,
                f"https://{host}:{address.port}{uri}",
                content=content,
                headers=headers,
                extensions={"sni_hostname": address.tls_name},
            ) as response:
                yield response
        except httpx.HTTPError as exc:
            raise FederationRequestFailed(destination, f"{type(exc).__name__}: {exc}") from exc

    def request(
        self,
        method: str,
        destination: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
        signed: bool = True,
    ) -> Any:
        """Send a request, return the decoded JSON answer.

        Raises:
            MatrixError: the server refused (its errcode for 400/403/404), or 502.
        """
        with self._stream(method, destination, path, query, body, signed) as response:
            raw = _read_limited(destination, response)
        answer = self._answer(destination, response, raw)
        _reachable(destination)
        return answer

    @staticmethod
    def _answer(destination: str, response: httpx.Response, raw: bytes) -> Any:
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = None
        if response.is_success:
            if decoded is None:
                raise FederationRequestFailed(destination, "the answer is not JSON")
            return decoded
        error = decoded if isinstance(decoded, dict) else {}
        errcode, message = error.get("errcode"), error.get("error")
        text = f"{destination}: {message if isinstance(message, str) else response.status_code}"
        if response.status_code in PASSED_ON and isinstance(errcode, str):
            raise MatrixError(response.status_code, errcode, text)
        raise MatrixError(502, Codes.UNKNOWN, f"{text} ({response.status_code} {errcode})")

    # --- keys -------------------------------------------------------------------------

    def get_server_keys(self, server_name: str) -> JsonDict:
        """GET /_matrix/key/v2/server of the server itself (not signed)."""
        answer = self.request("GET", server_name, "/_matrix/key/v2/server", signed=False)
        if not isinstance(answer, dict):
            raise FederationRequestFailed(server_name, "the key answer is not an object")
        return answer

    def query_notary(self, notary: str, server_name: str) -> list[JsonDict]:
        """POST /_matrix/key/v2/query of a notary, for every key of ``server_name``."""
        body: JsonDict = {"server_keys": {server_name: {}}}
        answer = self.request("POST", notary, "/_matrix/key/v2/query", body=body, signed=False)
        found = answer.get("server_keys") if isinstance(answer, dict) else None
        return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []

    # --- transactions -----------------------------------------------------------------

    def send_transaction(self, destination: str, txn_id: str, body: JsonDict) -> JsonDict:
        """PUT /send/{txnId}."""
        answer: JsonDict = self.request(
            "PUT", destination, f"{FED}/v1/send/{_p(txn_id)}", body=body
        )
        return answer

    # --- membership (federation.actions.remote_rooms.MembershipRemote) ----------------

    def make_membership(
        self, destination: str, room_id: str, user_id: str, membership: str, versions: list[str]
    ) -> JsonDict:
        query = {"ver": versions} if versions and membership != "leave" else None
        path = f"{FED}/v1/make_{membership}/{_p(room_id)}/{_p(user_id)}"
        return self._object(self.request("GET", destination, path, query), destination)

    def send_membership(
        self, destination: str, room_id: str, event_id: str, pdu: JsonDict, membership: str
    ) -> JsonDict:
        version = "v1" if membership == "knock" else "v2"
        path = f"{FED}/{version}/send_{membership}/{_p(room_id)}/{_p(event_id)}"
        return self._object(self.request("PUT", destination, path, body=pdu), destination)

    def invite(
        self,
        destination: str,
        room_id: str,
        event_id: str,
        pdu: JsonDict,
        room_version: str,
        invite_room_state: list[JsonDict],
    ) -> JsonDict:
        body = {"event": pdu, "room_version": room_version, "invite_room_state": invite_room_state}
        path = f"{FED}/v2/invite/{_p(room_id)}/{_p(event_id)}"
        return self._object(self.request("PUT", destination, path, body=body), destination)

    # --- the room graph (federation.actions.inbound.Remote) ---------------------------

    def get_missing_events(
        self,
        destination: str,
        room_id: str,
        earliest: list[str],
        latest: list[str],
        limit: int,
        min_depth: int,
    ) -> list[JsonDict]:
        body = {
            "earliest_events": earliest,
            "latest_events": latest,
            "limit": limit,
            "min_depth": min_depth,
        }
        path = f"{FED}/v1/get_missing_events/{_p(room_id)}"
        answer = self._object(self.request("POST", destination, path, body=body), destination)
        return self._list(answer, "events")

    def state_ids(
        self, destination: str, room_id: str, event_id: str
    ) -> tuple[list[str], list[str]]:
        path = f"{FED}/v1/state_ids/{_p(room_id)}"
        answer = self._object(
            self.request("GET", destination, path, {"event_id": event_id}), destination
        )
        pdu_ids, chain_ids = answer.get("pdu_ids"), answer.get("auth_chain_ids")
        if not isinstance(pdu_ids, list) or not isinstance(chain_ids, list):
            raise FederationRequestFailed(destination, "state_ids without pdu_ids/auth_chain_ids")
        return [str(e) for e in pdu_ids], [str(e) for e in chain_ids]

    def event(self, destination: str, event_id: str) -> JsonDict | None:
        try:
            answer = self.request("GET", destination, f"{FED}/v1/event/{_p(event_id)}")
        except MatrixError as exc:
            if exc.status == 404:
                return None
            raise
        pdus = self._list(self._object(answer, destination), "pdus")
        return pdus[0] if pdus else None

    def event_auth(self, destination: str, room_id: str, event_id: str) -> list[JsonDict]:
        path = f"{FED}/v1/event_auth/{_p(room_id)}/{_p(event_id)}"
        return self._list(
            self._object(self.request("GET", destination, path), destination), "auth_chain"
        )

    def backfill(
        self, destination: str, room_id: str, event_ids: list[str], limit: int
    ) -> list[JsonDict]:
        path = f"{FED}/v1/backfill/{_p(room_id)}"
        answer = self.request("GET", destination, path, {"v": event_ids, "limit": limit})
        return self._list(self._object(answer, destination), "pdus")

    # --- queries ----------------------------------------------------------------------

    def query_directory(self, destination: str, room_alias: str) -> JsonDict:
        answer = self.request(
            "GET", destination, f"{FED}/v1/query/directory", {"room_alias": room_alias}
        )
        return self._object(answer, destination)

    def query_profile(self, destination: str, user_id: str, field: str | None = None) -> JsonDict:
        query = {"user_id": user_id, **({"field": field} if field else {})}
        answer = self.request("GET", destination, f"{FED}/v1/query/profile", query)
        return self._object(answer, destination)

    def public_rooms(self, destination: str, body: JsonDict) -> JsonDict:
        """GET /publicRooms with limit and since, or POST for anything more (a filter)."""
        if set(body) <= {"limit", "since"}:
            answer = self.request("GET", destination, f"{FED}/v1/publicRooms", body)
        else:
            answer = self.request("POST", destination, f"{FED}/v1/publicRooms", body=body)
        return self._object(answer, destination)

    # --- end-to-end encryption ----------------------------------------------------------

    def query_user_keys(self, destination: str, device_keys: JsonDict) -> JsonDict:
        body = {"device_keys": device_keys}
        answer = self.request("POST", destination, f"{FED}/v1/user/keys/query", body=body)
        return self._object(answer, destination)

    def claim_user_keys(self, destination: str, one_time_keys: JsonDict) -> JsonDict:
        body = {"one_time_keys": one_time_keys}
        answer = self.request("POST", destination, f"{FED}/v1/user/keys/claim", body=body)
        return self._object(answer, destination)

    def user_devices(self, destination: str, user_id: str) -> JsonDict:
        path = f"{FED}/v1/user/devices/{_p(user_id)}"
        return self._object(self.request("GET", destination, path), destination)

    # --- media --------------------------------------------------------------------------

    @contextmanager
    def media_download(self, destination: str, media_id: str) -> Iterator[httpx.Response]:
        """GET /media/download/{mediaId}: the multipart answer, streaming.

        Raises:
            MatrixError: the server's refusal (404 M_NOT_FOUND...), or 502.
        """
        path = f"{FED}/v1/media/download/{_p(media_id)}"
        with self._stream("GET", destination, path) as response:
            if not response.is_success:
                self._answer(destination, response, _read_limited(destination, response))
            _reachable(destination)
            yield response

    # --- shapes -----------------------------------------------------------------------

    @staticmethod
    def _object(answer: Any, destination: str) -> JsonDict:
        if not isinstance(answer, dict):
            raise FederationRequestFailed(destination, "the answer is not a JSON object")
        return answer

    @staticmethod
    def _list(answer: JsonDict, name: str) -> list[JsonDict]:
        value = answer.get(name)
        return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _read_limited(destination: str, response: httpx.Response) -> bytes:
    """The body, refused past MAX_RESPONSE_BYTES (a server cannot make us hold more)."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise FederationRequestFailed(destination, "the answer is too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _reachable(destination: str) -> None:
    """A server that answered is no longer backed off: its queue is looked at now."""
    from federation.actions.outbound import wake_senders
    from federation.actions.sending import mark_reachable
    from federation.models import Destination

    if Destination.objects.filter(server_name=destination, retry_at_ms__gt=0).exists():
        if mark_reachable(destination):
            wake_senders([destination])


_lock = threading.Lock()
_client: HttpFederationClient | None = None


def federation_client() -> HttpFederationClient:
    """The process's client (one connection pool, shared by threads)."""
    global _client
    with _lock:
        if _client is None:
            _client = HttpFederationClient()
        return _client


def reset_client() -> None:
    """Drop the shared client (tests changing its settings)."""
    global _client
    with _lock:
        client, _client = _client, None
    if client is not None:
        client.http.close()
