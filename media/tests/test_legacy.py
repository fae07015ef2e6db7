"""The deprecated /_matrix/media/v3 download and thumbnail endpoints, frozen (spec 1.11)."""

from __future__ import annotations

from django.test import override_settings

from matrixhs.testing import MatrixTestCase
from media.models import Media
from media.tests.images import png

UPLOAD = "/_matrix/media/v3/upload"


class LegacyMediaTest(MatrixTestCase):
    def upload(self, data: bytes = b"old", content_type: str = "text/plain") -> str:
        resp = self.api(self.alice).upload(UPLOAD, data, content_type)
        return resp.body["content_uri"][len("mxc://") :]

    def test_media_after_freeze_is_not_found_without_auth(self) -> None:
        mxc = self.upload()
        for path in (
            f"/_matrix/media/v3/download/{mxc}",
            f"/_matrix/media/v3/download/{mxc}/name.txt",
            f"/_matrix/media/v3/thumbnail/{mxc}?width=32&height=32",
        ):
            self.assert_matrix_error(self.api(None).fetch(path), 404, "M_NOT_FOUND")
            # A token does not unfreeze them: only the authenticated endpoints serve it.
            self.assert_matrix_error(self.api(self.bob).fetch(path), 404, "M_NOT_FOUND")

    @override_settings(MATRIXHS_MEDIA_LEGACY_FREEZE_MS=2_000_000_000_000)
    def test_media_from_before_freeze_is_served_without_auth(self) -> None:
        mxc = self.upload(b"before the freeze")
        resp = self.api(None).fetch(f"/_matrix/media/v3/download/{mxc}")
        self.assertEqual((resp.status_code, resp.content), (200, b"before the freeze"))
        self.assertEqual(resp.headers["Cross-Origin-Resource-Policy"], "cross-origin")

    @override_settings(MATRIXHS_MEDIA_LEGACY_FREEZE_MS=2_000_000_000_000)
    def test_thumbnail_from_before_freeze_is_served(self) -> None:
        mxc = self.upload(png(500, 500), "image/png")
        resp = self.api(None).fetch(f"/_matrix/media/v3/thumbnail/{mxc}?width=32&height=32")
        self.assertEqual(resp.status_code, 200)

    @override_settings(MATRIXHS_MEDIA_LEGACY_FREEZE_MS=10_000)
    def test_freeze_compares_creation_time(self) -> None:
        mxc = self.upload(b"x")
        media_id = mxc.split("/")[1]
        self.assertEqual(self.api(None).fetch(f"/_matrix/media/v3/download/{mxc}").status_code, 404)
        Media.objects.filter(media_id=media_id).update(created_ts=9_999)
        self.assertEqual(self.api(None).fetch(f"/_matrix/media/v3/download/{mxc}").status_code, 200)

    @override_settings(MATRIXHS_MEDIA_LEGACY_FREEZE_MS=-1)
    def test_freeze_can_be_turned_off(self) -> None:
        mxc = self.upload(b"x")
        self.assertEqual(self.api(None).fetch(f"/_matrix/media/r0/download/{mxc}").status_code, 200)

    def test_authenticated_endpoint_serves_frozen_media(self) -> None:
        mxc = self.upload(b"new")
        resp = self.api(self.bob).fetch(f"/_matrix/client/v1/media/download/{mxc}")
        self.assertEqual((resp.status_code, resp.content), (200, b"new"))
