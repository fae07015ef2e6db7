"""GET /voip/turnServer."""

from __future__ import annotations

import base64
import hashlib
import hmac
from unittest import mock

from django.test import SimpleTestCase, override_settings

from matrixhs.settings import _parse_positive, _parse_turn_uris
from matrixhs.testing import ApiClient, MatrixTestCase

URL = "/_matrix/client/v3/voip/turnServer"
URIS = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:443?transport=tcp"]


class TurnServerTests(MatrixTestCase):
    @override_settings(
        MATRIXHS_TURN_URIS=URIS, MATRIXHS_TURN_SHARED_SECRET="s3cret", MATRIXHS_TURN_TTL=3600
    )
    def test_credentials_as_coturn_checks_them(self) -> None:
        with mock.patch("sync.views.now_ms", return_value=1_700_000_000_123):
            body = self.api(self.alice).get(URL).body
        self.assertEqual(body["username"], "1700003600:@alice:test.local")
        expected = base64.b64encode(
            hmac.new(b"s3cret", body["username"].encode(), hashlib.sha1).digest()
        ).decode()
        self.assertEqual(body["password"], expected)
        self.assertEqual((body["uris"], body["ttl"]), (URIS, 3600))

    def test_without_configuration_answers_an_empty_object(self) -> None:
        # As Synapse does; the spec's schema would want all four fields, so this one
        # response is not checked against it.
        client = ApiClient(self.client, self.alice.test_token, check_spec=False)
        response = client.get(URL)
        self.assertEqual((response.status_code, response.body), (200, {}))

    @override_settings(MATRIXHS_TURN_URIS=URIS, MATRIXHS_TURN_SHARED_SECRET="")
    def test_uris_without_a_secret_are_not_enough(self) -> None:
        client = ApiClient(self.client, self.alice.test_token, check_spec=False)
        self.assertEqual(client.get(URL).body, {})

    def test_needs_a_token(self) -> None:
        self.assert_matrix_error(self.api().get(URL), 401, "M_MISSING_TOKEN")


class TurnSettingsTests(SimpleTestCase):
    def test_uris_are_comma_separated_turn_uris(self) -> None:
        self.assertEqual(
            _parse_turn_uris(" turn:a:3478 , turns:b:443?transport=tcp,"),
            ["turn:a:3478", "turns:b:443?transport=tcp"],
        )
        with self.assertRaises(ValueError):
            _parse_turn_uris("turn:a, stun:b")

    def test_ttl_is_positive(self) -> None:
        self.assertEqual(_parse_positive("60"), 60)
        for raw in ("0", "-5", "soon"):
            with self.assertRaises(ValueError):
                _parse_positive(raw)
