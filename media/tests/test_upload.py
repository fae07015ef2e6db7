"""POST /_matrix/media/v3/upload."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings
from django.core.files.storage import storages
from django.test import override_settings

from matrixhs.testing import MatrixTestCase
from media.models import Media
from media.tests.images import png

UPLOAD = "/_matrix/media/v3/upload"


def stored_files() -> set[str]:
    """Every object in the media storage (a directory, or an S3 bucket)."""
    storage = storages["media"]
    if hasattr(storage, "bucket"):
        return {obj.key for obj in storage.bucket.objects.all()}
    root = Path(storage.location)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


class UploadTest(MatrixTestCase):
    def test_upload_returns_mxc_and_stores_bytes(self) -> None:
        data = b"hello media" * 100
        resp = self.api(self.alice).upload(f"{UPLOAD}?filename=notes.txt", data, "text/plain")
        self.assertEqual(resp.status_code, 200, resp.body)
        uri = resp.body["content_uri"]
        self.assertTrue(uri.startswith(f"mxc://{settings.MATRIXHS_SERVER_NAME}/"))
        media = Media.objects.get(media_id=uri.rsplit("/", 1)[1])
        self.assertEqual(
            (media.size, media.content_type, media.upload_name, media.user_id),
            (len(data), "text/plain", "notes.txt", self.alice.pk),
        )
        self.assertEqual(media.sha256, hashlib.sha256(data).hexdigest())

    def test_media_id_follows_the_grammar(self) -> None:
        uri = self.api(self.alice).upload(UPLOAD, b"x").body["content_uri"]
        self.assertRegex(uri.rsplit("/", 1)[1], r"^[A-Za-z0-9_-]+$")

    def test_missing_content_type_defaults_to_octet_stream(self) -> None:
        uri = self.api(self.alice).upload(UPLOAD, b"x", content_type="").body["content_uri"]
        media = Media.objects.get(media_id=uri.rsplit("/", 1)[1])
        self.assertEqual(media.content_type, "application/octet-stream")

    def test_upload_needs_a_token(self) -> None:
        resp = self.api(None).upload(UPLOAD, b"x")
        self.assert_matrix_error(resp, 401, "M_MISSING_TOKEN")

    @override_settings(MATRIXHS_MAX_UPLOAD_BYTES=1000)
    def test_too_large_upload_is_refused_and_leaves_nothing(self) -> None:
        before = stored_files()
        resp = self.api(self.alice).upload(UPLOAD, b"x" * 1001)
        self.assert_matrix_error(resp, 413, "M_TOO_LARGE")
        self.assertEqual(stored_files(), before)
        self.assertFalse(Media.objects.exists())

    @override_settings(MATRIXHS_MAX_UPLOAD_BYTES=1000)
    def test_body_longer_than_declared_limit_is_refused_while_copying(self) -> None:
        """No Content-Length to trust (chunked): the copy stops at the limit."""
        from media import actions
        from media.storage import CountingReader

        before = stored_files()
        reader = CountingReader(_Stream(b"y" * 5000), limit=10**9)
        with self.assertRaises(actions.TooLarge):
            actions.do_upload(self.alice, reader, "text/plain", None, declared=None)
        self.assertEqual(stored_files(), before)
        self.assertFalse(Media.objects.exists())

    def test_exactly_the_limit_is_accepted(self) -> None:
        with override_settings(MATRIXHS_MAX_UPLOAD_BYTES=1000):
            resp = self.api(self.alice).upload(UPLOAD, b"x" * 1000)
        self.assertEqual(resp.status_code, 200, resp.body)

    @override_settings(MATRIXHS_MEDIA_USER_QUOTA_BYTES=1500)
    def test_quota_is_per_user(self) -> None:
        self.assertEqual(self.api(self.alice).upload(UPLOAD, b"a" * 1000).status_code, 200)
        before = stored_files()
        resp = self.api(self.alice).upload(UPLOAD, b"a" * 1000)
        self.assert_matrix_error(resp, 403, "M_FORBIDDEN")
        self.assertEqual(stored_files(), before)
        self.assertEqual(self.api(self.bob).upload(UPLOAD, b"b" * 1000).status_code, 200)

    def test_image_upload_pregenerates_the_spec_sizes(self) -> None:
        uri = self.api(self.alice).upload(UPLOAD, png(1000, 800), "image/png").body["content_uri"]
        media = Media.objects.get(media_id=uri.rsplit("/", 1)[1])
        self.assertEqual((media.width, media.height), (1000, 800))
        made = set(media.thumbnails.values_list("width", "height", "method"))
        self.assertEqual(made, set(settings.MATRIXHS_THUMBNAIL_SIZES))

    def test_failed_database_write_removes_stored_bytes(self) -> None:
        from unittest import mock

        before = stored_files()
        with mock.patch("media.actions.Media.objects.create", side_effect=RuntimeError("db")):
            with self.assertRaises(RuntimeError):
                self.api(self.alice).upload(UPLOAD, b"z" * 100)
        self.assertEqual(stored_files(), before)

    def test_upload_is_reachable_through_r0(self) -> None:
        resp = self.api(self.alice).upload("/_matrix/media/r0/upload", b"x")
        self.assertEqual(resp.status_code, 200, resp.body)


class _Stream:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, size: int = -1) -> bytes:
        out, self.data = self.data[:size], self.data[size:]
        return out
