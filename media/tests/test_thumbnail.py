"""GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}."""

from __future__ import annotations

from django.test import override_settings

from matrixhs.testing import MatrixTestCase
from media.models import Media, Thumbnail
from media.tests.images import animated, jpeg, jpeg_rotated, open_image, png, png_bomb

UPLOAD = "/_matrix/media/v3/upload"
THUMB = "/_matrix/client/v1/media/thumbnail"


class ThumbnailTest(MatrixTestCase):
    def upload(self, data: bytes, content_type: str) -> str:
        resp = self.api(self.alice).upload(UPLOAD, data, content_type)
        self.assertEqual(resp.status_code, 200, resp.body)
        return resp.body["content_uri"][len("mxc://") :]

    def thumb(self, mxc: str, query: str, user: object = None) -> object:
        return self.api(user or self.bob).fetch(f"{THUMB}/{mxc}?{query}")

    def test_crop_has_the_requested_size(self) -> None:
        mxc = self.upload(png(1000, 500), "image/png")
        resp = self.thumb(mxc, "width=96&height=96&method=crop")
        self.assertEqual(resp.status_code, 200)
        self.assertEqual(resp.headers["Content-Type"], "image/png")
        self.assertEqual(resp.headers["Content-Disposition"], 'inline; filename="thumbnail.png"')
        self.assertEqual(open_image(resp.content).size, (96, 96))

    def test_scale_keeps_aspect_and_fits_the_box(self) -> None:
        mxc = self.upload(png(1000, 500), "image/png")
        resp = self.thumb(mxc, "width=320&height=240&method=scale")
        self.assertEqual(open_image(resp.content).size, (320, 160))

    def test_smaller_request_gets_the_next_configured_size_up(self) -> None:
        mxc = self.upload(png(1000, 500), "image/png")
        resp = self.thumb(mxc, "width=50&height=50&method=crop")
        self.assertEqual(open_image(resp.content).size, (96, 96))

    def test_unconfigured_size_is_made_on_demand_and_cached(self) -> None:
        mxc = self.upload(png(2000, 1500), "image/png")
        first = self.thumb(mxc, "width=1000&height=1000&method=scale")
        self.assertEqual(open_image(first.content).size, (1000, 750))
        count = Thumbnail.objects.count()
        second = self.thumb(mxc, "width=1000&height=1000&method=scale")
        self.assertEqual((second.content, Thumbnail.objects.count()), (first.content, count))

    def test_jpeg_source_gives_jpeg(self) -> None:
        mxc = self.upload(jpeg(640, 480), "image/jpeg")
        resp = self.thumb(mxc, "width=32&height=32&method=crop")
        self.assertEqual(resp.headers["Content-Type"], "image/jpeg")
        self.assertEqual(open_image(resp.content).format, "JPEG")

    def test_small_image_is_served_as_is_never_upscaled(self) -> None:
        data = png(20, 10)
        mxc = self.upload(data, "image/png")
        resp = self.thumb(mxc, "width=640&height=480&method=scale")
        self.assertEqual(resp.content, data)

    def test_crop_of_small_image_is_not_upscaled(self) -> None:
        mxc = self.upload(jpeg(100, 40), "image/jpeg")
        resp = self.thumb(mxc, "width=96&height=96&method=crop")
        width, height = open_image(resp.content).size
        self.assertLessEqual((width, height), (100, 40))
        self.assertEqual(width, height)

    def test_animated_gif_stays_animated_when_asked(self) -> None:
        mxc = self.upload(animated("GIF", 400, 300, frames=4), "image/gif")
        resp = self.thumb(mxc, "width=96&height=96&method=crop&animated=true")
        self.assertEqual(resp.headers["Content-Type"], "image/gif")
        image = open_image(resp.content)
        self.assertEqual((image.size, image.n_frames), ((96, 96), 4))

    def test_animated_webp_stays_animated_when_asked(self) -> None:
        mxc = self.upload(animated("WEBP", 400, 300, frames=3), "image/webp")
        resp = self.thumb(mxc, "width=96&height=96&method=crop&animated=true")
        self.assertEqual(resp.headers["Content-Type"], "image/webp")
        self.assertEqual(open_image(resp.content).n_frames, 3)

    def test_animated_source_is_static_unless_asked(self) -> None:
        for query in ("", "&animated=false"):
            mxc = self.upload(animated("GIF", 400, 300), "image/gif")
            resp = self.thumb(mxc, f"width=96&height=96&method=crop{query}")
            self.assertEqual(resp.headers["Content-Type"], "image/png")
            self.assertEqual(getattr(open_image(resp.content), "n_frames", 1), 1)

    def test_small_animated_image_served_as_is_only_when_animation_asked(self) -> None:
        data = animated("GIF", 40, 30)
        mxc = self.upload(data, "image/gif")
        self.assertEqual(self.thumb(mxc, "width=96&height=96&animated=true").content, data)
        static = self.thumb(mxc, "width=96&height=96")
        self.assertEqual(static.headers["Content-Type"], "image/png")

    def test_decompression_bomb_is_refused_without_decoding(self) -> None:
        mxc = self.upload(png_bomb(), "image/png")
        self.assertFalse(Thumbnail.objects.exists())
        resp = self.thumb(mxc, "width=32&height=32&method=crop")
        self.assert_matrix_error(resp, 413, "M_TOO_LARGE")

    @override_settings(MATRIXHS_MAX_IMAGE_PIXELS=1000 * 1000)
    def test_pixel_limit_is_a_setting(self) -> None:
        mxc = self.upload(png(1001, 1000), "image/png")
        self.assert_matrix_error(self.thumb(mxc, "width=32&height=32"), 413, "M_TOO_LARGE")

    def test_non_image_cannot_be_thumbnailed(self) -> None:
        mxc = self.upload(b"just text", "text/plain")
        self.assert_matrix_error(self.thumb(mxc, "width=32&height=32"), 400, "M_UNKNOWN")

    def test_corrupt_image_cannot_be_thumbnailed(self) -> None:
        mxc = self.upload(b"\x89PNG\r\n\x1a\nnot really", "image/png")
        self.assert_matrix_error(self.thumb(mxc, "width=32&height=32"), 400, "M_UNKNOWN")

    def test_bad_dimensions_are_refused(self) -> None:
        mxc = self.upload(png(100, 100), "image/png")
        for query in ("width=0&height=10", "width=-5&height=10", "width=a&height=10"):
            self.assert_matrix_error(self.thumb(mxc, query), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(self.thumb(mxc, "width=10"), 400, "M_MISSING_PARAM")
        resp = self.thumb(mxc, "width=10&height=10&method=stretch")
        self.assert_matrix_error(resp, 400, "M_INVALID_PARAM")

    def test_thumbnail_needs_a_token(self) -> None:
        mxc = self.upload(png(100, 100), "image/png")
        resp = self.api(None).fetch(f"{THUMB}/{mxc}?width=32&height=32")
        self.assert_matrix_error(resp, 401, "M_MISSING_TOKEN")

    def test_unknown_media_is_not_found(self) -> None:
        self.assert_matrix_error(
            self.thumb("test.local/nothing", "width=3&height=3"), 404, "M_NOT_FOUND"
        )

    def test_thumbnails_are_deleted_with_their_media(self) -> None:
        mxc = self.upload(png(300, 300), "image/png")
        Media.objects.get(media_id=mxc.split("/")[1]).delete()
        self.assertFalse(Thumbnail.objects.exists())

    def test_missing_stored_image_is_not_found(self) -> None:
        from media import storage

        mxc = self.upload(png(300, 300), "image/png")
        storage.delete(Media.objects.get(media_id=mxc.split("/")[1]).storage_key)
        with self.assertLogs("media.storage", "ERROR"):
            resp = self.thumb(mxc, "width=500&height=500&method=crop")
        self.assert_matrix_error(resp, 404, "M_NOT_FOUND")

    def test_large_jpeg_follows_exif_orientation(self) -> None:
        mxc = self.upload(jpeg_rotated(4000, 3000), "image/jpeg")
        scaled = open_image(self.thumb(mxc, "width=320&height=240&method=scale").content)
        self.assertEqual(scaled.size, (180, 240))
        # Orientation 6 turns the stored top (red) to the right-hand side.
        right, left = scaled.getpixel((170, 120)), scaled.getpixel((10, 120))
        self.assertGreater(right[0], right[2])
        self.assertGreater(left[2], left[0])
        cropped = open_image(self.thumb(mxc, "width=96&height=96&method=crop").content)
        self.assertEqual(cropped.size, (96, 96))
        ondemand = self.thumb(mxc, "width=1500&height=1500&method=scale").content
        self.assertEqual(open_image(ondemand).size, (1125, 1500))
