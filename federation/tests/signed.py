"""Signed federation requests for tests: a pretend remote server (rooms.tests.remote)
calls this server's federation API through Django's test client, with X-Matrix
authorization made with its own key, which the key store then knows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from django.conf import settings
from django.test import Client
from signedjson.sign import sign_json

from federation.keys import server_keys
from matrixhs.protocol.signing import MemoryServerKeys, ServerVerifyKey, key_id, verify_key_of
from matrixhs.testing import ApiResponse, assert_conforms
from rooms.tests.remote import RemoteServer


class KnownKeys(MemoryServerKeys):
    """The remote servers' keys, and whatever the real key store knows."""

    def get_verify_key(self, server_name: str, key_id: str) -> ServerVerifyKey | None:
        return super().get_verify_key(server_name, key_id) or server_keys().get_verify_key(
            server_name, key_id
        )


@contextmanager
def known_servers(*servers: RemoteServer) -> Iterator[KnownKeys]:
    """The key store knows these servers' keys (signature checks of requests and events)."""
    keys = KnownKeys()
    for server in servers:
        keys.add(server.name, verify_key_of(server.key))
    with mock.patch("federation.auth.server_keys", return_value=keys):
        yield keys


def x_matrix(
    server: RemoteServer,
    method: str,
    uri: str,
    content: Any = None,
    destination: str | None = None,
) -> str:
    destination = destination or settings.MATRIXHS_SERVER_NAME
    request: dict[str, Any] = {
        "method": method,
        "uri": uri,
        "origin": server.name,
        "destination": destination,
    }
    if content is not None:
        request["content"] = content
    signature = sign_json(request, server.name, server.key)["signatures"][server.name]
    name = key_id(server.key)
    return (
        f'X-Matrix origin="{server.name}",destination="{destination}",'
        f'key="{name}",sig="{signature[name]}"'
    )


def federation_request(
    client: Client,
    server: RemoteServer,
    method: str,
    uri: str,
    body: Any = None,
    authorization: str | None = None,
    check_spec: bool = True,
) -> ApiResponse:
    """``server`` calls ``uri`` (unencoded IDs are fine: Django's test client sends the
    path as given) and gets the decoded answer, checked against the server-server spec."""
    auth = authorization or x_matrix(server, method, uri, body)
    data = json.dumps(body) if body is not None else None
    response = client.generic(
        method,
        uri,
        data=data or "",
        content_type="application/json",
        headers={"Authorization": auth},
    )
    decoded = json.loads(response.content)
    if check_spec:
        assert_conforms(method, uri, response.status_code, decoded, api="server-server")
    return ApiResponse(response.status_code, decoded, response)
