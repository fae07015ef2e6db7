"""POST /_matrix/media/v1/create and PUT /_matrix/media/v3/upload/{serverName}/{mediaId}."""

from __future__ import annotations

from unittest import mock

from django.conf import settings
from django.test import override_settings

from matrixhs.testing import MatrixTestCase
from media import storage as media_storage
from media.models import Media
from media.tests.test_upload import stored_files

CREATE = "/_matrix/media/v1/create"
DOWNLOAD = "/_matrix/client/v1/media/download"


class CreateTest(MatrixTestCase):
    def create(self) -> tuple[str, dict]:
        resp = self.api(self.alice).post(CREATE)
        self.assertEqual(resp.status_code, 200, resp.body)
        return resp.body["content_uri"][len("mxc://") :], resp.body

    def test_create_then_put_then_download(self) -> None:
        mxc, body = self.create()
        self.assertGreater(body["unused_expires_at"], 0)
        resp = self.api(self.alice).upload(
            f"/_matrix/media/v3/upload/{mxc}?filename=f.txt", b"later", "text/plain", method="PUT"
        )
        self.assertEqual((resp.status_code, resp.body), (200, {}))
        got = self.api(self.bob).fetch(f"{DOWNLOAD}/{mxc}")
        self.assertEqual((got.status_code, got.content), (200, b"later"))

    def test_download_before_upload_is_not_yet_uploaded(self) -> None:
        mxc, _ = self.create()
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{mxc}?timeout_ms=0")
        self.assert_matrix_error(resp, 504, "M_NOT_YET_UPLOADED")

    def test_second_put_cannot_overwrite(self) -> None:
        mxc, _ = self.create()
        put = f"/_matrix/media/v3/upload/{mxc}"
        self.assertEqual(self.api(self.alice).upload(put, b"1", method="PUT").status_code, 200)
        before = stored_files()
        resp = self.api(self.alice).upload(put, b"2", method="PUT")
        self.assert_matrix_error(resp, 409, "M_CANNOT_OVERWRITE_MEDIA")
        self.assertEqual(stored_files(), before)
        self.assertEqual(self.api(self.bob).fetch(f"{DOWNLOAD}/{mxc}").content, b"1")

    def test_other_user_cannot_put(self) -> None:
        mxc, _ = self.create()
        resp = self.api(self.bob).upload(f"/_matrix/media/v3/upload/{mxc}", b"x", method="PUT")
        self.assert_matrix_error(resp, 403, "M_FORBIDDEN")

    def test_put_to_unknown_id_is_not_found(self) -> None:
        path = f"/_matrix/media/v3/upload/{settings.MATRIXHS_SERVER_NAME}/unknownid"
        resp = self.api(self.alice).upload(path, b"x", method="PUT")
        self.assert_matrix_error(resp, 404, "M_NOT_FOUND")

    def test_put_to_other_server_is_not_found(self) -> None:
        mxc, _ = self.create()
        media_id = mxc.split("/")[1]
        path = f"/_matrix/media/v3/upload/other.example/{media_id}"
        resp = self.api(self.alice).upload(path, b"x", method="PUT")
        self.assert_matrix_error(resp, 404, "M_NOT_FOUND")

    def test_put_after_expiry_is_not_found(self) -> None:
        mxc, _ = self.create()
        Media.objects.update(unused_expires_ts=1)
        resp = self.api(self.alice).upload(f"/_matrix/media/v3/upload/{mxc}", b"x", method="PUT")
        self.assert_matrix_error(resp, 404, "M_NOT_FOUND")

    def test_expired_id_downloads_as_not_found(self) -> None:
        mxc, _ = self.create()
        Media.objects.update(unused_expires_ts=1)
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{mxc}?timeout_ms=0")
        self.assert_matrix_error(resp, 404, "M_NOT_FOUND")

    @override_settings(MATRIXHS_MEDIA_MAX_PENDING_UPLOADS=2)
    def test_pending_ids_are_limited(self) -> None:
        self.create()
        self.create()
        self.assert_matrix_error(self.api(self.alice).post(CREATE), 429, "M_LIMIT_EXCEEDED")
        self.assertEqual(self.api(self.bob).post(CREATE).status_code, 200)

    @override_settings(MATRIXHS_MAX_UPLOAD_BYTES=10)
    def test_too_large_put_leaves_id_pending(self) -> None:
        mxc, _ = self.create()
        before = stored_files()
        path = f"/_matrix/media/v3/upload/{mxc}"
        resp = self.api(self.alice).upload(path, b"x" * 11, method="PUT")
        self.assert_matrix_error(resp, 413, "M_TOO_LARGE")
        self.assertEqual(stored_files(), before)
        self.assertIsNone(Media.objects.get().uploaded_ts)
        self.assertEqual(self.api(self.alice).upload(path, b"ok", method="PUT").status_code, 200)

    def test_put_that_loses_a_race_removes_its_bytes(self) -> None:
        """Another PUT finished while this one was copying: 409, its bytes are removed."""
        mxc, _ = self.create()
        before = stored_files()
        real_save = media_storage.save

        def save_then_lose(key: str, content: object) -> str:
            stored = real_save(key, content)
            Media.objects.update(uploaded_ts=1)
            return stored

        with mock.patch("media.storage.save", side_effect=save_then_lose):
            resp = self.api(self.alice).upload(
                f"/_matrix/media/v3/upload/{mxc}", b"x", method="PUT"
            )
        self.assert_matrix_error(resp, 409, "M_CANNOT_OVERWRITE_MEDIA")
        self.assertEqual(stored_files(), before)
