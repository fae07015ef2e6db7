"""GET /_matrix/federation/v1/media/download/{mediaId} and /thumbnail/{mediaId}."""

from __future__ import annotations

import email.parser
import email.policy
from typing import Any

from django.conf import settings
from django.test import override_settings
from signedjson.sign import sign_json

from federation.keys import get_signing_key, key_id
from matrixhs.testing import MatrixTestCase, assert_conforms, assert_media_conforms
from media.tests.images import open_image, png

FED = "/_matrix/federation/v1/media"


def x_matrix(method: str, uri: str, origin: str | None = None, sig: str | None = None) -> str:
    key = get_signing_key()
    origin = origin or settings.MATRIXHS_SERVER_NAME
    signed = sign_json(
        {
            "method": method,
            "uri": uri,
            "origin": origin,
            "destination": settings.MATRIXHS_SERVER_NAME,
        },
        origin,
        key,
    )
    signature = sig or signed["signatures"][origin][key_id(key)]
    return (
        f'X-Matrix origin="{origin}",destination="{settings.MATRIXHS_SERVER_NAME}",'
        f'key="{key_id(key)}",sig="{signature}"'
    )


def parts(content: bytes, content_type: str) -> list[Any]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + content
    )
    return list(message.iter_parts())


@override_settings(MATRIXHS_FEDERATION_ENABLED=True)
class FederationMediaTest(MatrixTestCase):
    def upload(self, data: bytes, content_type: str, name: str = "") -> str:
        query = f"?filename={name}" if name else ""
        resp = self.api(self.alice).upload(f"/_matrix/media/v3/upload{query}", data, content_type)
        return resp.body["content_uri"].rsplit("/", 1)[1]

    def get(self, uri: str, auth: str | None = None) -> Any:
        response = self.client.get(uri, headers={"Authorization": auth or x_matrix("GET", uri)})
        content = b"".join(response) if response.streaming else response.content
        return response, content

    def test_download_is_multipart_with_metadata_then_bytes(self) -> None:
        media_id = self.upload(b"federated bytes", "text/plain", "a.txt")
        uri = f"{FED}/download/{media_id}"
        response, content = self.get(uri)
        self.assertEqual(response.status_code, 200, content)
        assert_media_conforms("GET", uri, 200, response, api="server-server")
        self.assertTrue(response["Content-Type"].startswith("multipart/mixed; boundary="))
        self.assertEqual(response["Content-Length"], str(len(content)))
        meta, body = parts(content, response["Content-Type"])
        self.assertEqual((meta.get_content_type(), meta.get_content()), ("application/json", b"{}"))
        self.assertEqual(body.get_content_type(), "text/plain")
        self.assertEqual(body["Content-Disposition"], 'inline; filename="a.txt"')
        self.assertEqual(body.get_payload(decode=True), b"federated bytes")

    def test_thumbnail_is_multipart_with_an_image(self) -> None:
        media_id = self.upload(png(800, 600), "image/png")
        uri = f"{FED}/thumbnail/{media_id}?width=96&height=96&method=crop"
        response, content = self.get(uri)
        self.assertEqual(response.status_code, 200, content)
        _, body = parts(content, response["Content-Type"])
        self.assertEqual(body.get_content_type(), "image/png")
        self.assertEqual(open_image(body.get_payload(decode=True)).size, (96, 96))

    def test_unsigned_request_is_unauthorized(self) -> None:
        media_id = self.upload(b"x", "text/plain")
        uri = f"{FED}/download/{media_id}"
        response = self.client.get(uri)
        self.assertEqual(response.status_code, 401)
        assert_conforms("GET", uri, 401, response.json(), api="server-server")

    def test_bad_signature_is_unauthorized(self) -> None:
        media_id = self.upload(b"x", "text/plain")
        uri = f"{FED}/download/{media_id}"
        forged = x_matrix("GET", f"{FED}/download/other")  # signed for another URI
        response, _ = self.get(uri, auth=forged)
        self.assertEqual(
            (response.status_code, response.json()["errcode"]), (401, "M_UNAUTHORIZED")
        )

    def test_unknown_origin_is_unauthorized(self) -> None:
        media_id = self.upload(b"x", "text/plain")
        uri = f"{FED}/download/{media_id}"
        response, _ = self.get(uri, auth=x_matrix("GET", uri, origin="evil.example"))
        self.assertEqual(response.status_code, 401)

    def test_unknown_media_is_not_found(self) -> None:
        uri = f"{FED}/download/doesnotexist"
        response, _ = self.get(uri)
        self.assertEqual((response.status_code, response.json()["errcode"]), (404, "M_NOT_FOUND"))
