"""The federation transport: server name resolution, and the signed HTTPS client (its
requests, the mapping of answers, the address filter)."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import httpx
from django.conf import settings
from django.core.cache import cache
from django.test import SimpleTestCase, TestCase, override_settings

from federation.keys import get_signing_key
from federation.transport.client import HttpFederationClient
from federation.transport.discovery import (
    ServerAddress,
    fetch_well_known,
    resolve_server,
    split_server_name,
)
from matrixhs.errors import MatrixError
from matrixhs.protocol.signing import verify_json, verify_key_of

Srv = dict[str, list[tuple[str, int]]]


def resolve(name: str, well_known: dict[str, str] | None = None, srv: Srv | None = None) -> Any:
    return resolve_server(
        name, lambda host: (well_known or {}).get(host), lambda n: (srv or {}).get(n, [])
    )


class ResolveServerTests(SimpleTestCase):
    def test_ip_literals(self) -> None:
        self.assertEqual(resolve("1.2.3.4"), ServerAddress("1.2.3.4", 8448, "1.2.3.4", "1.2.3.4"))
        self.assertEqual(resolve("[::1]:99"), ServerAddress("::1", 99, "::1", "[::1]:99"))

    def test_explicit_port_skips_well_known_and_srv(self) -> None:
        address = resolve(
            "example.org:1234",
            {"example.org": "other.org"},
            {"_matrix-fed._tcp.example.org": [("srv.org", 1)]},
        )
        self.assertEqual(
            address, ServerAddress("example.org", 1234, "example.org", "example.org:1234")
        )

    def test_well_known_delegation_with_port(self) -> None:
        address = resolve("example.org", {"example.org": "matrix.example.org:443"})
        self.assertEqual(
            address,
            ServerAddress(
                "matrix.example.org", 443, "matrix.example.org", "matrix.example.org:443"
            ),
        )

    def test_well_known_delegation_then_srv(self) -> None:
        address = resolve(
            "example.org",
            {"example.org": "matrix.example.org"},
            {"_matrix-fed._tcp.matrix.example.org": [("host.example.net", 8000)]},
        )
        self.assertEqual(
            address,
            ServerAddress("host.example.net", 8000, "matrix.example.org", "matrix.example.org"),
        )

    def test_srv_then_deprecated_srv_then_8448(self) -> None:
        fed = {"_matrix-fed._tcp.example.org": [("a.example.net", 1)]}
        self.assertEqual(resolve("example.org", srv=fed).host, "a.example.net")
        old = {"_matrix._tcp.example.org": [("b.example.net", 2)]}
        self.assertEqual(
            resolve("example.org", srv=old),
            ServerAddress("b.example.net", 2, "example.org", "example.org"),
        )
        self.assertEqual(
            resolve("example.org"), ServerAddress("example.org", 8448, "example.org", "example.org")
        )

    def test_invalid_name(self) -> None:
        with self.assertRaises(ValueError):
            resolve("bad name")

    def test_split(self) -> None:
        self.assertEqual(split_server_name("a.org:80"), ("a.org", 80))
        self.assertEqual(split_server_name("[::1]"), ("::1", None))


class WellKnownTests(SimpleTestCase):
    def setUp(self) -> None:
        cache.clear()
        self.hits = 0

    def client_answering(
        self, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> Any:
        def handler(request: httpx.Request) -> httpx.Response:
            self.hits += 1
            self.assertEqual(str(request.url), "https://example.org/.well-known/matrix/server")
            return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)

        return httpx.Client(transport=httpx.MockTransport(handler))

    def test_delegation_is_cached(self) -> None:
        client = self.client_answering(200, {"m.server": "m.example.org:443"})
        self.assertEqual(fetch_well_known("example.org", client), "m.example.org:443")
        self.assertEqual(fetch_well_known("example.org", client), "m.example.org:443")
        self.assertEqual(self.hits, 1)

    def test_invalid_or_missing_is_none_and_cached(self) -> None:
        client = self.client_answering(200, {"m.server": "not a name"})
        self.assertIsNone(fetch_well_known("example.org", client))
        self.assertIsNone(fetch_well_known("example.org", client))
        self.assertEqual(self.hits, 1)
        cache.clear()
        self.assertIsNone(fetch_well_known("example.org", self.client_answering(404, {})))


class ClientTests(TestCase):
    def setUp(self) -> None:
        cache.clear()
        self.requests: list[httpx.Request] = []
        self.answer: tuple[int, Any] = (200, {})

    def fed_client(self) -> HttpFederationClient:
        def handler(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            status, body = self.answer
            return httpx.Response(status, content=json.dumps(body).encode())

        return HttpFederationClient(httpx.Client(transport=httpx.MockTransport(handler)))

    def test_requests_are_signed_for_the_destination(self) -> None:
        self.answer = (200, {"pdus": {}})
        self.fed_client().send_transaction("remote.example:8448", "7", {"pdus": [], "edus": []})
        [request] = self.requests
        self.assertEqual(
            str(request.url), "https://remote.example:8448/_matrix/federation/v1/send/7"
        )
        self.assertEqual(request.headers["host"], "remote.example:8448")
        from federation.auth import parse_x_matrix

        params = parse_x_matrix(request.headers["authorization"])
        self.assertEqual(params["origin"], settings.MATRIXHS_SERVER_NAME)
        self.assertEqual(params["destination"], "remote.example:8448")
        signed = {
            "method": "PUT",
            "uri": "/_matrix/federation/v1/send/7",
            "origin": params["origin"],
            "destination": params["destination"],
            "content": json.loads(request.content),
            "signatures": {params["origin"]: {params["key"]: params["sig"]}},
        }
        verify_json(signed, params["origin"], verify_key_of(get_signing_key()))

    def test_ids_are_percent_encoded_and_versions_sent(self) -> None:
        self.answer = (200, {"event": {}, "room_version": "11"})
        self.fed_client().make_membership(
            "r.example:1", "!room:r.example", "@u:test", "join", ["10", "11"]
        )
        self.assertEqual(
            self.requests[0].url.raw_path,
            b"/_matrix/federation/v1/make_join/%21room%3Ar.example/%40u%3Atest?ver=10&ver=11",
        )

    def test_state_ids_and_missing_event(self) -> None:
        self.answer = (200, {"pdu_ids": ["$a"], "auth_chain_ids": ["$b"]})
        client = self.fed_client()
        self.assertEqual(client.state_ids("r.example:1", "!r:r", "$e"), (["$a"], ["$b"]))
        self.answer = (404, {"errcode": "M_NOT_FOUND", "error": "no"})
        self.assertIsNone(client.event("r.example:1", "$x"))

    def test_refusals_keep_their_errcode_other_failures_are_502(self) -> None:
        client = self.fed_client()
        self.answer = (403, {"errcode": "M_FORBIDDEN", "error": "go away"})
        with self.assertRaises(MatrixError) as caught:
            client.query_directory("r.example:1", "#a:r.example")
        self.assertEqual((caught.exception.status, caught.exception.errcode), (403, "M_FORBIDDEN"))
        self.answer = (500, {"errcode": "M_UNKNOWN"})
        with self.assertRaises(MatrixError) as caught:
            client.query_directory("r.example:1", "#a:r.example")
        self.assertEqual(caught.exception.status, 502)

    def test_oversized_answer_is_refused(self) -> None:
        self.answer = (200, {"pdus": ["x" * 2000]})
        with mock.patch("federation.transport.client.MAX_RESPONSE_BYTES", 1000):
            with self.assertRaises(MatrixError) as caught:
                self.fed_client().backfill("r.example:1", "!r:r", ["$e"], 10)
        self.assertIn("too large", caught.exception.msg)

    def test_non_json_answer_is_502(self) -> None:
        self.answer = (200, None)
        client = HttpFederationClient(
            httpx.Client(
                transport=httpx.MockTransport(lambda r: httpx.Response(200, text="<html>"))
            )
        )
        with self.assertRaises(MatrixError) as caught:
            client.query_profile("r.example:1", "@a:r.example")
        self.assertEqual(caught.exception.status, 502)

    def test_loopback_is_refused_unless_allowed(self) -> None:
        client = HttpFederationClient()
        with self.assertRaises(MatrixError) as caught:
            client.get_server_keys("127.0.0.1:9")
        self.assertEqual(caught.exception.status, 502)
        self.assertIn("not allowed", caught.exception.msg)

    @override_settings(MATRIXHS_FEDERATION_IP_ALLOWLIST=["127.0.0.0/8"])
    def test_allowed_loopback_is_connected_to(self) -> None:
        client = HttpFederationClient()
        with self.assertRaises(MatrixError) as caught:
            client.get_server_keys("127.0.0.1:9")  # nothing listens on the discard port
        self.assertNotIn("not allowed", caught.exception.msg)
