"""Server keys: ours (GET /_matrix/key/v2/server, rotation), the notary endpoints, and the
key ring of other servers' keys (fetched, cached, refetched, validity)."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.test import TestCase, override_settings

from federation.keys import KeyRing, get_signing_key, key_id, server_keys
from federation.models import ServerKey, ServerKeysResponse
from matrixhs.protocol.canonical_json import encode_canonical_json
from matrixhs.protocol.signing import (
    encode_verify_key,
    generate_signing_key,
    sign_json,
    verify_json,
    verify_key_of,
)
from matrixhs.testing import assert_conforms
from matrixhs.time import now_ms


def keys_response(name: str, key: Any, valid_for_ms: int = 3_600_000, **extra: Any) -> Any:
    body = {
        "server_name": name,
        "verify_keys": {key_id(key): {"key": encode_verify_key(verify_key_of(key))}},
        "old_verify_keys": {},
        "valid_until_ts": now_ms() + valid_for_ms,
        **extra,
    }
    return sign_json(body, name, key)


class FakeKeyClient:
    """Answers GET /_matrix/key/v2/server and notary queries from a dict."""

    def __init__(self) -> None:
        self.responses: dict[str, Any] = {}
        self.notary: dict[str, list[Any]] = {}
        self.calls: list[str] = []

    def get_server_keys(self, server_name: str) -> Any:
        self.calls.append(server_name)
        if server_name not in self.responses:
            raise ConnectionError("unreachable")
        return self.responses[server_name]

    def query_notary(self, notary: str, server_name: str) -> list[Any]:
        self.calls.append(f"notary {notary} {server_name}")
        return self.notary.get(server_name, [])


class KeyTestCase(TestCase):
    def setUp(self) -> None:
        self.us = settings.MATRIXHS_SERVER_NAME
        cache.clear()
        self.fake = FakeKeyClient()
        self.enterContext(
            mock.patch("federation.transport.client.federation_client", return_value=self.fake)
        )


@override_settings(MATRIXHS_FEDERATION_ENABLED=True)
class OwnKeysTests(KeyTestCase):
    def get(self, path: str) -> tuple[int, Any]:
        response = self.client.get(path)
        body = json.loads(response.content)
        assert_conforms("GET", path, response.status_code, body, api="server-server")
        return response.status_code, body

    def test_server_keys_are_self_signed_and_valid_for_a_while(self) -> None:
        status, body = self.get("/_matrix/key/v2/server")
        self.assertEqual(status, 200)
        key = get_signing_key()
        self.assertEqual(body["server_name"], self.us)
        self.assertEqual(list(body["verify_keys"]), [key_id(key)])
        verify_json(body, self.us, verify_key_of(key))
        self.assertGreater(body["valid_until_ts"], now_ms() + 3_600_000)

    def test_server_keys_are_served_as_canonical_json(self) -> None:
        # A reader may verify the signature over the bytes it got, signatures removed.
        raw = self.client.get("/_matrix/key/v2/server").content
        body = json.loads(raw)
        self.assertEqual(raw, encode_canonical_json(body))

    def test_rotation_keeps_the_old_key_as_old_verify_key(self) -> None:
        import tempfile
        from pathlib import Path

        path = Path(tempfile.mkdtemp()) / "signing.key"
        self.enterContext(override_settings(MATRIXHS_SIGNING_KEY_PATH=path))
        get_signing_key.cache_clear()
        old = get_signing_key()
        try:
            call_command("rotate_signing_key", stdout=mock.Mock())
            new = get_signing_key()
            self.assertNotEqual(key_id(new), key_id(old))
            _status, body = self.get("/_matrix/key/v2/server")
            self.assertEqual(list(body["verify_keys"]), [key_id(new)])
            entry = body["old_verify_keys"][key_id(old)]
            self.assertEqual(entry["key"], encode_verify_key(verify_key_of(old)))
            self.assertLessEqual(entry["expired_ts"], now_ms())
            verify_json(body, self.us, verify_key_of(new))
            # Events signed with the old key before it expired still verify.
            known = server_keys().get_verify_key(self.us, key_id(old))
            assert known is not None
            self.assertEqual(known.valid_until_ts, entry["expired_ts"])
        finally:
            get_signing_key.cache_clear()

    def test_version(self) -> None:
        status, body = self.get("/_matrix/federation/v1/version")
        self.assertEqual(status, 200)
        self.assertEqual(body["server"]["name"], "matrixhs")

    @override_settings(MATRIXHS_FEDERATION_ENABLED=False)
    def test_keys_are_not_served_while_federation_is_disabled(self) -> None:
        response = self.client.get("/_matrix/key/v2/server")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json()["errcode"], "M_UNRECOGNIZED")


@override_settings(MATRIXHS_FEDERATION_ENABLED=True)
class NotaryTests(KeyTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.remote_key = generate_signing_key("r1")
        self.fake.responses["remote.example"] = keys_response("remote.example", self.remote_key)

    def post(self, body: Any) -> tuple[int, Any]:
        path = "/_matrix/key/v2/query"
        response = self.client.post(path, body, content_type="application/json")
        decoded = json.loads(response.content)
        assert_conforms("POST", path, response.status_code, decoded, api="server-server")
        return response.status_code, decoded

    def test_query_fetches_and_countersigns(self) -> None:
        status, body = self.post({"server_keys": {"remote.example": {"ed25519:r1": {}}}})
        self.assertEqual(status, 200)
        [answer] = body["server_keys"]
        verify_json(answer, "remote.example", verify_key_of(self.remote_key))
        verify_json(answer, self.us, verify_key_of(get_signing_key()))
        self.assertEqual(self.fake.calls, ["remote.example"])
        # Cached: a second query asks nobody.
        self.post({"server_keys": {"remote.example": {}}})
        self.assertEqual(self.fake.calls, ["remote.example"])

    def test_query_refetches_for_an_unknown_key_or_a_later_validity(self) -> None:
        self.post({"server_keys": {"remote.example": {}}})
        self.post({"server_keys": {"remote.example": {"ed25519:other": {}}}})
        later = now_ms() + 10 * 3_600_000
        self.post(
            {"server_keys": {"remote.example": {"ed25519:r1": {"minimum_valid_until_ts": later}}}}
        )
        self.assertEqual(self.fake.calls, ["remote.example"] * 3)

    def test_get_query_of_our_own_keys(self) -> None:
        path = f"/_matrix/key/v2/query/{self.us}"
        response = self.client.get(path)
        body = response.json()
        assert_conforms("GET", path, 200, body, api="server-server")
        [answer] = body["server_keys"]
        self.assertEqual(answer["server_name"], self.us)
        verify_json(answer, self.us, verify_key_of(get_signing_key()))

    def test_unreachable_server_with_nothing_cached_is_left_out(self) -> None:
        status, body = self.post({"server_keys": {"gone.example": {}}})
        self.assertEqual((status, body["server_keys"]), (200, []))

    def test_bad_query_is_bad_json(self) -> None:
        status, body = self.post({"server_keys": []})
        self.assertEqual((status, body["errcode"]), (400, "M_BAD_JSON"))
        status, body = self.post(
            {"server_keys": {"remote.example": {"k": {"minimum_valid_until_ts": "x"}}}}
        )
        self.assertEqual((status, body["errcode"]), (400, "M_INVALID_PARAM"))


class KeyRingTests(KeyTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.key = generate_signing_key("r1")

    def test_unknown_key_is_fetched_from_the_origin_and_cached(self) -> None:
        self.fake.responses["remote.example"] = keys_response("remote.example", self.key)
        found = KeyRing().get_verify_key("remote.example", "ed25519:r1")
        assert found is not None
        self.assertEqual(
            encode_verify_key(found.verify_key), encode_verify_key(verify_key_of(self.key))
        )
        self.assertGreater(found.valid_until_ts or 0, now_ms())
        self.assertTrue(ServerKey.objects.filter(server_name="remote.example").exists())
        self.assertTrue(ServerKeysResponse.objects.filter(server_name="remote.example").exists())
        cache.clear()
        KeyRing().get_verify_key("remote.example", "ed25519:r1")
        self.assertEqual(self.fake.calls, ["remote.example"])

    def test_unknown_key_id_is_refetched_at_most_once_per_interval(self) -> None:
        self.fake.responses["remote.example"] = keys_response("remote.example", self.key)
        ring = KeyRing()
        self.assertIsNone(ring.get_verify_key("remote.example", "ed25519:nope"))
        self.assertIsNone(ring.get_verify_key("remote.example", "ed25519:nope"))
        self.assertEqual(self.fake.calls, ["remote.example"])
        cache.clear()  # the interval passed
        self.assertIsNone(ring.get_verify_key("remote.example", "ed25519:nope"))
        self.assertEqual(len(self.fake.calls), 2)

    def test_expired_key_is_refetched(self) -> None:
        self.fake.responses["remote.example"] = keys_response(
            "remote.example", self.key, valid_for_ms=-1000
        )
        ring = KeyRing()
        first = ring.get_verify_key("remote.example", "ed25519:r1")
        assert first is not None and first.valid_until_ts is not None
        self.assertLess(first.valid_until_ts, now_ms())  # the core refuses newer events
        self.fake.responses["remote.example"] = keys_response("remote.example", self.key)
        cache.clear()
        again = ring.get_verify_key("remote.example", "ed25519:r1")
        assert again is not None and again.valid_until_ts is not None
        self.assertGreater(again.valid_until_ts, now_ms())

    def test_response_not_signed_by_the_server_is_refused(self) -> None:
        forged = keys_response("remote.example", self.key)
        forged["signatures"] = sign_json(
            {k: v for k, v in forged.items() if k != "signatures"},
            "remote.example",
            generate_signing_key("r1"),
        )["signatures"]
        self.fake.responses["remote.example"] = forged
        self.assertIsNone(KeyRing().get_verify_key("remote.example", "ed25519:r1"))
        self.assertFalse(ServerKey.objects.exists())

    def test_response_for_another_server_is_refused(self) -> None:
        self.fake.responses["remote.example"] = keys_response("evil.example", self.key)
        self.assertIsNone(KeyRing().get_verify_key("remote.example", "ed25519:r1"))

    @override_settings(MATRIXHS_FEDERATION_TRUSTED_KEY_SERVERS=["notary.example"])
    def test_notary_is_asked_when_the_origin_does_not_answer(self) -> None:
        notary_key = generate_signing_key("n1")
        self.fake.responses["notary.example"] = keys_response("notary.example", notary_key)
        countersigned = sign_json(
            keys_response("remote.example", self.key), "notary.example", notary_key
        )
        self.fake.notary["remote.example"] = [countersigned]
        found = KeyRing().get_verify_key("remote.example", "ed25519:r1")
        self.assertIsNotNone(found)
        self.assertIn("notary notary.example remote.example", self.fake.calls)

    @override_settings(MATRIXHS_FEDERATION_TRUSTED_KEY_SERVERS=["notary.example"])
    def test_notary_answer_without_the_notary_signature_is_refused(self) -> None:
        self.fake.responses["notary.example"] = keys_response(
            "notary.example", generate_signing_key("n1")
        )
        self.fake.notary["remote.example"] = [keys_response("remote.example", self.key)]
        self.assertIsNone(KeyRing().get_verify_key("remote.example", "ed25519:r1"))


@override_settings(MATRIXHS_FEDERATION_ENABLED=True)
class RequestKeyTests(KeyTestCase):
    def test_request_signed_with_an_expired_key_is_unauthorized(self) -> None:
        from federation.tests.signed import x_matrix
        from rooms.tests.remote import RemoteServer

        server = RemoteServer("remote.example")
        self.fake.responses["remote.example"] = keys_response(
            "remote.example", server.key, valid_for_ms=-1000
        )
        uri = "/_matrix/federation/v1/query/profile?user_id=%40a%3Alocalhost"
        response = self.client.get(uri, headers={"Authorization": x_matrix(server, "GET", uri)})
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["errcode"], "M_UNAUTHORIZED")

    def test_request_signed_with_a_fetched_key_is_accepted(self) -> None:
        from federation.tests.signed import x_matrix
        from rooms.tests.remote import RemoteServer

        server = RemoteServer("remote.example")
        self.fake.responses["remote.example"] = keys_response("remote.example", server.key)
        uri = "/_matrix/federation/v1/query/directory?room_alias=%23nope%3Alocalhost"
        response = self.client.get(uri, headers={"Authorization": x_matrix(server, "GET", uri)})
        self.assertEqual(response.status_code, 404, response.content)
        self.assertEqual(response.json()["errcode"], "M_NOT_FOUND")


class KeyValidityTests(KeyTestCase):
    """A key fetched with a valid_until_ts does not verify events signed after it."""

    def event(self, key: Any, ts: int) -> Any:
        from matrixhs.protocol.room_versions import get_room_version
        from matrixhs.protocol.signing import build_pdu

        partial = {
            "type": "m.room.message",
            "sender": "@carol:remote.example",
            "content": {"body": "hi"},
            "room_id": "!r:remote.example",
            "prev_events": ["$p"],
            "auth_events": ["$a"],
            "depth": 3,
            "origin_server_ts": ts,
        }
        return build_pdu(partial, "remote.example", key, get_room_version("11"))[1]

    def test_events_after_valid_until_ts_do_not_verify(self) -> None:
        from federation.auth import verify_event
        from matrixhs.protocol.room_versions import get_room_version
        from matrixhs.protocol.signing import InvalidSignature

        key = generate_signing_key("r1")
        response = keys_response("remote.example", key, valid_for_ms=3_600_000)
        self.fake.responses["remote.example"] = response
        rv = get_room_version("11")
        verify_event(self.event(key, now_ms()), rv)
        with self.assertRaises(InvalidSignature):
            verify_event(self.event(key, response["valid_until_ts"] + 1), rv)
