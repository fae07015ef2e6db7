"""Media of other servers through the client API: fetched from the origin's federation
media endpoint (here: this server's own, answering for "remote.example", so the multipart
reader reads what a real server writes), stored once, served byte for byte, thumbnailed
here; the redirect form fetched from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import httpx
from django.test import override_settings

from matrixhs.errors import MatrixError
from matrixhs.testing import MatrixTestCase
from matrixhs.tests.http_server import local_server
from media.models import Media
from media.tests.images import open_image, png
from media.tests.test_federation import x_matrix

CLIENT_MEDIA = "/_matrix/client/v1/media"
FILE = bytes(range(256)) * 40 + b"\r\n--not-a-boundary\r\n"


class Origin:
    """remote.example: its media are what this server serves under the same IDs."""

    def __init__(self, test: MatrixTestCase) -> None:
        self.test = test
        self.calls: list[str] = []
        self.override: dict[str, httpx.Response] = {}

    @contextmanager
    def media_download(self, destination: str, media_id: str) -> Iterator[httpx.Response]:
        self.calls.append(media_id)
        if media_id in self.override:
            yield self.override[media_id]
            return
        uri = f"/_matrix/federation/v1/media/download/{media_id}"
        response = self.test.client.get(uri, headers={"Authorization": x_matrix("GET", uri)})
        content = b"".join(response) if response.streaming else response.content
        if response.status_code != 200:
            raise MatrixError(response.status_code, "M_NOT_FOUND", "not found")
        yield httpx.Response(200, headers=dict(response.items()), content=content)


@override_settings(MATRIXHS_FEDERATION_ENABLED=True)
class RemoteMediaTest(MatrixTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.origin = Origin(self)
        self.enterContext(mock.patch("federation.peers.remote", return_value=self.origin))

    def upload(self, data: bytes, content_type: str, name: str) -> str:
        got = self.api(self.bob).upload(
            f"/_matrix/media/v3/upload?filename={name}", data, content_type
        )
        return str(got.body["content_uri"].rsplit("/", 1)[1])

    def download(self, media_id: str, suffix: str = "") -> Any:
        return self.api(self.alice).fetch(
            f"{CLIENT_MEDIA}/download/remote.example/{media_id}{suffix}"
        )

    def test_downloaded_byte_for_byte_and_fetched_once(self) -> None:
        media_id = self.upload(FILE, "application/octet-stream", "data.bin")
        first = self.download(media_id)
        self.assertEqual(first.status_code, 200)
        self.assertEqual(first.content, FILE)
        self.assertIn('filename="data.bin"', first.headers["Content-Disposition"])
        again = self.download(media_id)
        self.assertEqual(again.content, FILE)
        self.assertEqual(self.origin.calls, [media_id])
        copy = Media.objects.get(server_name="remote.example", media_id=media_id)
        self.assertEqual((copy.size, copy.upload_name, copy.user), (len(FILE), "data.bin", None))

    def test_thumbnail_of_a_remote_image(self) -> None:
        media_id = self.upload(png(640, 480), "image/png", "p.png")
        response = self.api(self.alice).fetch(
            f"{CLIENT_MEDIA}/thumbnail/remote.example/{media_id}?width=64&height=64&method=crop"
        )
        self.assertEqual(response.status_code, 200)
        width, height = open_image(response.content).size
        self.assertEqual(width, height)  # cropped, at the nearest size made here
        self.assertGreaterEqual(width, 64)

    def test_unknown_unreachable_and_nonsense(self) -> None:
        missing = self.download("doesnotexist")
        self.assertEqual((missing.status_code, missing.body["errcode"]), (404, "M_NOT_FOUND"))
        self.origin.override["garbled"] = httpx.Response(
            200, headers={"Content-Type": "multipart/mixed; boundary=xyz"}, content=b"nonsense"
        )
        garbled = self.download("garbled")
        self.assertEqual((garbled.status_code, garbled.body["errcode"]), (502, "M_UNKNOWN"))
        self.origin.override["plain"] = httpx.Response(
            200, headers={"Content-Type": "text/plain"}, content=b"not multipart"
        )
        self.assertEqual(self.download("plain").status_code, 502)
        self.assertFalse(Media.objects.filter(server_name="remote.example").exists())

    @override_settings(MATRIXHS_MAX_UPLOAD_BYTES=1000)
    def test_too_large_is_refused_and_not_kept(self) -> None:
        with override_settings(MATRIXHS_MAX_UPLOAD_BYTES=100_000):
            media_id = self.upload(FILE, "application/octet-stream", "big.bin")
        response = self.download(media_id)
        self.assertEqual((response.status_code, response.body["errcode"]), (413, "M_TOO_LARGE"))
        self.assertFalse(Media.objects.filter(server_name="remote.example").exists())

    @override_settings(MATRIXHS_OUTBOUND_IP_ALLOWLIST=["127.0.0.1/32"])
    def test_the_redirect_form_is_followed(self) -> None:
        routes = {
            "/cdn/file": lambda: (
                200,
                {"Content-Type": "text/plain", "Content-Disposition": 'inline; filename="c.txt"'},
                b"from the cdn",
            )
        }
        server = self.enterContext(local_server(routes))
        body = (
            "--b\r\nContent-Type: application/json\r\n\r\n{}\r\n"
            f"--b\r\nLocation: {server.url('/cdn/file')}\r\n\r\n\r\n--b--\r\n"
        ).encode()
        self.origin.override["redirected"] = httpx.Response(
            200, headers={"Content-Type": "multipart/mixed; boundary=b"}, content=body
        )
        response = self.download("redirected")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.content, b"from the cdn")
        self.assertIn('filename="c.txt"', response.headers["Content-Disposition"])

    def test_legacy_allow_remote_false_fetches_nothing(self) -> None:
        media_id = self.upload(b"abc", "text/plain", "a.txt")
        path = f"/_matrix/media/v3/download/remote.example/{media_id}?allow_remote=false"
        self.assertEqual(self.api().fetch(path).status_code, 404)
        self.assertEqual(self.origin.calls, [])

    @override_settings(MATRIXHS_FEDERATION_ENABLED=False)
    def test_without_federation_remote_media_is_not_found(self) -> None:
        self.assertEqual(self.download("anything").status_code, 404)
        self.assertEqual(self.origin.calls, [])
