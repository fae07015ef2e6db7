"""Downloads and cached thumbnails cost a fixed, small number of queries beyond the
access-token check (measured against GET /media/config, which makes only that check)."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from matrixhs.testing import MatrixTestCase
from media.tests.images import png

CONFIG = "/_matrix/client/v1/media/config"


class MediaQueryCountTest(MatrixTestCase):
    def queries(self, path: str) -> int:
        self.api(self.bob).fetch(path)  # warm: access time recorded, thumbnail made
        with CaptureQueriesContext(connection) as captured:
            self.api(self.bob).fetch(path)
        return len(captured.captured_queries)

    def upload(self, data: bytes, content_type: str) -> str:
        resp = self.api(self.alice).upload("/_matrix/media/v3/upload", data, content_type)
        return resp.body["content_uri"][len("mxc://") :]

    def test_download_is_one_query_past_auth(self) -> None:
        base = self.queries(CONFIG)
        small = self.upload(b"x", "text/plain")
        large = self.upload(b"y" * 3_000_000, "text/plain")
        self.assertEqual(self.queries(f"/_matrix/client/v1/media/download/{small}"), base + 1)
        self.assertEqual(self.queries(f"/_matrix/client/v1/media/download/{large}"), base + 1)

    def test_cached_thumbnail_is_two_queries_past_auth(self) -> None:
        base = self.queries(CONFIG)
        mxc = self.upload(png(1000, 1000), "image/png")
        path = f"/_matrix/client/v1/media/thumbnail/{mxc}?width=1000&height=700&method=crop"
        self.assertEqual(self.queries(path), base + 2)
