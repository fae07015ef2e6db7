"""The plumbing every endpoint shares: JSON errors, CORS, tokens, body limits."""

from __future__ import annotations

import asyncio
import json

from django.test import override_settings

from accounts.models import AccountData
from matrixhs.asgi_limits import RequestBodyLimit
from matrixhs.testing import MatrixTestCase

WHOAMI = "/_matrix/client/v3/account/whoami"


class ErrorRenderingTests(MatrixTestCase):
    def test_unknown_path_is_404_unrecognized(self) -> None:
        response = self.client.get("/_matrix/client/v3/no/such/endpoint")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json()["errcode"], "M_UNRECOGNIZED")
        self.assertEqual(response["Access-Control-Allow-Origin"], "*")

    def test_unknown_path_outside_matrix_is_json_too(self) -> None:
        response = self.client.get("/nothing-here")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json()["errcode"], "M_UNRECOGNIZED")

    def test_wrong_method_is_405_unrecognized(self) -> None:
        response = self.api(self.alice).request("DELETE", WHOAMI)
        self.assert_matrix_error(response, 405, "M_UNRECOGNIZED")

    def test_malformed_json_is_400_not_json(self) -> None:
        url = "/_matrix/client/v3/user/@alice:test.local/account_data/m.test"
        response = self.api(self.alice).request("PUT", url, raw=b"{not json")
        self.assert_matrix_error(response, 400, "M_NOT_JSON")
        self.assertFalse(AccountData.objects.exists())

    def test_nan_is_not_json(self) -> None:
        url = "/_matrix/client/v3/user/@alice:test.local/account_data/m.test"
        response = self.api(self.alice).request("PUT", url, raw=b'{"a": NaN}')
        self.assert_matrix_error(response, 400, "M_NOT_JSON")

    def test_invalid_utf8_is_not_json(self) -> None:
        url = "/_matrix/client/v3/user/@alice:test.local/account_data/m.test"
        response = self.api(self.alice).request("PUT", url, raw=b'{"a": "\xff"}')
        self.assert_matrix_error(response, 400, "M_NOT_JSON")

    def test_json_array_is_400_bad_json(self) -> None:
        url = "/_matrix/client/v3/user/@alice:test.local/account_data/m.test"
        response = self.api(self.alice).request("PUT", url, raw=b"[1, 2]")
        self.assert_matrix_error(response, 400, "M_BAD_JSON")

    def test_wrong_type_is_400_bad_json(self) -> None:
        response = self.api().post(
            "/_matrix/client/v3/login", {"type": "m.login.password", "user": 5, "password": "x"}
        )
        self.assert_matrix_error(response, 400, "M_BAD_JSON")

    def test_missing_field_is_400_missing_param(self) -> None:
        response = self.api().post("/_matrix/client/v3/login", {"password": "x"})
        self.assert_matrix_error(response, 400, "M_MISSING_PARAM")

    @override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
    def test_body_over_limit_is_413_too_large(self) -> None:
        url = "/_matrix/client/v3/user/@alice:test.local/account_data/m.test"
        body = {"big": "x" * 200}
        response = self.api(self.alice).put(url, body)
        self.assert_matrix_error(response, 413, "M_TOO_LARGE")
        self.assertFalse(AccountData.objects.exists())


class TokenTests(MatrixTestCase):
    def test_no_token_is_401_missing_token(self) -> None:
        self.assert_matrix_error(self.api().get(WHOAMI), 401, "M_MISSING_TOKEN")

    def test_bad_token_is_401_unknown_token(self) -> None:
        response = self.api(token="mhat_nonsense").get(WHOAMI)
        self.assert_matrix_error(response, 401, "M_UNKNOWN_TOKEN")
        self.assertIs(response.body["soft_logout"], False)

    def test_non_bearer_authorization_is_missing_token(self) -> None:
        response = self.api().get(WHOAMI, headers={"Authorization": "Basic abc"})
        self.assert_matrix_error(response, 401, "M_MISSING_TOKEN")

    def test_query_parameter_token_is_accepted(self) -> None:
        response = self.api().get(f"{WHOAMI}?access_token={self.alice.test_token}")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.body["user_id"], "@alice:test.local")

    def test_r0_prefix_serves_the_same_api(self) -> None:
        response = self.api(self.alice).get("/_matrix/client/r0/account/whoami")
        self.assertEqual(response.body["user_id"], "@alice:test.local")


class CorsTests(MatrixTestCase):
    def test_options_answers_with_cors_headers_without_auth(self) -> None:
        response = self.client.options(WHOAMI)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Access-Control-Allow-Origin"], "*")
        self.assertIn("Authorization", response["Access-Control-Allow-Headers"])
        self.assertIn("PUT", response["Access-Control-Allow-Methods"])

    def test_errors_carry_cors_headers(self) -> None:
        response = self.client.get(WHOAMI)
        self.assertEqual(response["Access-Control-Allow-Origin"], "*")


class BodyLimitTests(MatrixTestCase):
    """The ASGI wrapper refuses big bodies before Django reads them."""

    def _run(
        self,
        headers: list[tuple[bytes, bytes]],
        chunks: list[bytes],
        path: str = "/_matrix/client/v3/x",
    ) -> list[dict]:
        sent: list[dict] = []
        called = []

        async def app(scope: dict, receive: object, send: object) -> None:
            called.append(True)
            while True:
                message = await receive()  # type: ignore[operator]
                if message["type"] == "http.disconnect" or not message.get("more_body"):
                    break

        async def receive() -> dict:
            body = chunks.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(chunks)}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {"type": "http", "path": path, "headers": headers}
        limited = RequestBodyLimit(app, limit=10, path_limits=[(r"^/upload$", 20)])
        asyncio.run(limited(scope, receive, send))
        return sent

    def test_declared_length_over_limit_is_refused_unread(self) -> None:
        sent = self._run([(b"content-length", b"11")], [b"x" * 11])
        self.assertEqual(sent[0]["status"], 413)
        self.assertEqual(json.loads(sent[1]["body"])["errcode"], "M_TOO_LARGE")

    def test_streamed_body_over_limit_is_refused(self) -> None:
        sent = self._run([], [b"x" * 6, b"x" * 6])
        self.assertEqual(sent[0]["status"], 413)

    def test_body_within_limit_passes(self) -> None:
        sent = self._run([(b"content-length", b"10")], [b"x" * 10])
        self.assertEqual(sent, [])

    def test_path_with_its_own_limit_takes_more(self) -> None:
        self.assertEqual(self._run([(b"content-length", b"20")], [b"x" * 20], "/upload"), [])
        self.assertEqual(self._run([], [b"x" * 15, b"x" * 5], "/upload"), [])

    def test_path_with_its_own_limit_still_has_one(self) -> None:
        sent = self._run([(b"content-length", b"21")], [b"x" * 21], "/upload")
        self.assertEqual(sent[0]["status"], 413)
        sent = self._run([], [b"x" * 15, b"x" * 15], "/upload")
        self.assertEqual(sent[0]["status"], 413)

    def test_media_upload_paths_get_the_upload_limit(self) -> None:
        from django.conf import settings

        from matrixhs.asgi import body_limit

        for path in (
            "/_matrix/media/v3/upload",
            "/_matrix/media/r0/upload",
            "/_matrix/media/v3/upload/test.local/abcDEF_-1",
        ):
            self.assertEqual(body_limit.limit_for(path), settings.MATRIXHS_MAX_UPLOAD_BYTES)
        for path in ("/_matrix/client/v3/keys/upload", "/_matrix/media/v3/upload/x"):
            self.assertEqual(body_limit.limit_for(path), settings.MATRIXHS_MAX_REQUEST_BYTES)
