"""GET /_matrix/client/v1/media/download/{serverName}/{mediaId}[/{fileName}]."""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings

from matrixhs.testing import MatrixTestCase
from media.models import Media
from media.responses import CONTENT_SECURITY_POLICY

UPLOAD = "/_matrix/media/v3/upload"
DOWNLOAD = "/_matrix/client/v1/media/download"
THUMBNAIL = "/_matrix/client/v1/media/thumbnail"


class DownloadTest(MatrixTestCase):
    def upload(self, data: bytes, content_type: str, filename: str = "") -> str:
        query = f"?filename={filename}" if filename else ""
        resp = self.api(self.alice).upload(f"{UPLOAD}{query}", data, content_type)
        self.assertEqual(resp.status_code, 200, resp.body)
        return resp.body["content_uri"][len("mxc://") :]

    def test_other_user_downloads_identical_bytes(self) -> None:
        data = bytes(range(256)) * 5000
        mxc = self.upload(data, "application/x-custom")
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{mxc}")
        self.assertEqual(resp.status_code, 200)
        self.assertEqual(resp.content, data)
        self.assertEqual(resp.headers["Content-Type"], "application/x-custom")
        self.assertEqual(resp.headers["Content-Length"], str(len(data)))

    def test_safety_headers(self) -> None:
        mxc = self.upload(b"x", "text/plain")
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{mxc}")
        self.assertEqual(resp.headers["Content-Security-Policy"], CONTENT_SECURITY_POLICY)
        self.assertEqual(resp.headers["Cross-Origin-Resource-Policy"], "cross-origin")

    def test_safe_type_is_inline_with_its_name(self) -> None:
        mxc = self.upload(b"x", "image/png", "cat.png")
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{mxc}")
        self.assertEqual(resp.headers["Content-Disposition"], 'inline; filename="cat.png"')

    def test_unsafe_type_is_attachment_with_type_kept(self) -> None:
        mxc = self.upload(b"<script>alert(1)</script>", "text/html", "page.html")
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{mxc}")
        self.assertEqual(resp.headers["Content-Disposition"], 'attachment; filename="page.html"')
        self.assertEqual(resp.headers["Content-Type"], "text/html")

    def test_svg_is_attachment(self) -> None:
        mxc = self.upload(b"<svg/>", "image/svg+xml")
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{mxc}")
        self.assertEqual(resp.headers["Content-Disposition"], "attachment")

    def test_file_name_in_path_replaces_upload_name(self) -> None:
        mxc = self.upload(b"x", "text/plain", "a.txt")
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{mxc}/other%20name.txt")
        self.assertEqual(resp.headers["Content-Disposition"], 'inline; filename="other name.txt"')

    def test_long_file_name_in_path_is_served(self) -> None:
        mxc = self.upload(b"x", "text/plain", "a.txt")
        name = "n" * 300 + ".txt"
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{mxc}/{name}")
        self.assertEqual(resp.status_code, 200)
        self.assertEqual(resp.headers["Content-Disposition"], f'inline; filename="{name}"')

    def test_non_ascii_file_name_is_encoded(self) -> None:
        mxc = self.upload(b"x", "text/plain", "%C3%A9t%C3%A9.txt")
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{mxc}")
        self.assertEqual(
            resp.headers["Content-Disposition"], "inline; filename*=utf-8''%C3%A9t%C3%A9.txt"
        )

    def test_download_needs_a_token(self) -> None:
        mxc = self.upload(b"x", "text/plain")
        resp = self.api(None).fetch(f"{DOWNLOAD}/{mxc}")
        self.assert_matrix_error(resp, 401, "M_MISSING_TOKEN")

    def test_path_naming_no_media_needs_a_token_then_is_not_found(self) -> None:
        mxc = self.upload(b"x", "text/plain")
        whole_uri = quote(f"mxc://{mxc}", safe="")  # a client that sends the whole URI
        for path in (f"{DOWNLOAD}/test/{whole_uri}", f"{THUMBNAIL}/test/{whole_uri}"):
            self.assert_matrix_error(self.api(None).fetch(path), 401, "M_MISSING_TOKEN")
            self.assert_matrix_error(self.api(self.bob).fetch(path), 404, "M_NOT_FOUND")

    def test_unknown_media_is_not_found(self) -> None:
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{settings.MATRIXHS_SERVER_NAME}/nope")
        self.assert_matrix_error(resp, 404, "M_NOT_FOUND")

    def test_media_id_outside_grammar_is_refused(self) -> None:
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{settings.MATRIXHS_SERVER_NAME}/a.b")
        self.assert_matrix_error(resp, 400, "M_INVALID_PARAM")

    def test_traversal_in_media_id_never_reaches_storage(self) -> None:
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{settings.MATRIXHS_SERVER_NAME}/..%2F..%2Fx")
        self.assertEqual(resp.status_code, 404)

    def test_invalid_server_name_is_refused(self) -> None:
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/bad_server!/abc")
        self.assert_matrix_error(resp, 400, "M_INVALID_PARAM")

    def test_remote_media_without_federation_is_not_found(self) -> None:
        # Fetched over federation otherwise: media.tests.test_remote.
        with self.settings(MATRIXHS_FEDERATION_ENABLED=False):
            resp = self.api(self.bob).fetch(f"{DOWNLOAD}/other.example/abcdef")
        self.assert_matrix_error(resp, 404, "M_NOT_FOUND")

    def test_quarantined_media_is_not_served(self) -> None:
        mxc = self.upload(b"x", "text/plain")
        Media.objects.filter(media_id=mxc.split("/")[1]).update(quarantined_by="@admin:x")
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{mxc}")
        self.assert_matrix_error(resp, 404, "M_NOT_FOUND")

    def test_download_records_access(self) -> None:
        mxc = self.upload(b"x", "text/plain")
        Media.objects.update(last_access_ts=1)
        self.api(self.bob).fetch(f"{DOWNLOAD}/{mxc}")
        self.assertGreater(Media.objects.get().last_access_ts, 1)

    def test_missing_stored_object_is_not_found(self) -> None:
        from media import storage

        mxc = self.upload(b"x", "text/plain")
        storage.delete(Media.objects.get(media_id=mxc.split("/")[1]).storage_key)
        with self.assertLogs("media.storage", "ERROR"):
            resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{mxc}")
        self.assert_matrix_error(resp, 404, "M_NOT_FOUND")
