"""GET /_matrix/client/v1/media/preview_url, against a real HTTP server on 127.0.0.1
(reached through MATRIXHS_OUTBOUND_IP_ALLOWLIST; blocked without it)."""

from __future__ import annotations

from urllib.parse import quote

from django.test import override_settings

from matrixhs.testing import MatrixTestCase
from matrixhs.tests.http_server import local_server, slow_body
from media.models import Media, UrlPreview
from media.tests.images import png

PREVIEW = "/_matrix/client/v1/media/preview_url"
IMAGE = png(400, 300)

PAGE = b"""<!doctype html><html><head>
<meta charset="utf-8"><title>Ignored title</title>
<meta property="og:title" content="A &amp; B">
<meta property="og:description" content="The description">
<meta property="og:image" content="/img.png">
<meta property="og:image:width" content="9999">
<meta property="og:site_name" content="Example">
</head><body>hello</body></html>"""
PLAIN = (
    b"<html><head><title>\n  Just a   title </title>"
    b'<meta name="description" content="Meta description"></head></html>'
)


def html(body: bytes) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "text/html; charset=utf-8"}, body


ROUTES = {
    "/page": lambda: html(PAGE),
    "/plain": lambda: html(PLAIN),
    "/img.png": lambda: (200, {"Content-Type": "image/png"}, IMAGE),
    "/file.zip": lambda: (200, {"Content-Type": "application/zip"}, b"PK"),
    "/missing": lambda: (404, {}, b"no"),
    "/big": lambda: html(b"<html>" + b"x" * 5000),
    "/big-chunked": lambda: (200, {"Content-Type": "text/html"}, iter([b"x" * 1000] * 10)),
    "/slow": lambda: (200, {"Content-Type": "text/html"}, slow_body(3)),
    "/loop": lambda: (302, {"Location": "/loop"}, b""),
    "/to-page": lambda: (302, {"Location": "/page"}, b""),
}


@override_settings(MATRIXHS_OUTBOUND_IP_ALLOWLIST=["127.0.0.1/32"])
class PreviewUrlTest(MatrixTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.server = self.enterContext(local_server(dict(ROUTES)))

    def preview(self, path: str, host: str = "127.0.0.1", user: object = None) -> object:
        url = quote(self.server.url(path, host), safe="")
        return self.api(user or self.alice).get(f"{PREVIEW}?url={url}")

    def test_opengraph_page_with_its_image(self) -> None:
        resp = self.preview("/page")
        self.assertEqual(resp.status_code, 200, resp.body)
        og = resp.body
        self.assertEqual(
            (og["og:title"], og["og:description"], og["og:site_name"]),
            ("A & B", "The description", "Example"),
        )
        self.assertTrue(og["og:image"].startswith("mxc://"))
        self.assertEqual((og["og:image:width"], og["og:image:height"]), (400, 300))
        self.assertEqual((og["og:image:type"], og["matrix:image:size"]), ("image/png", len(IMAGE)))
        mxc = og["og:image"][len("mxc://") :]
        got = self.api(self.bob).fetch(f"/_matrix/client/v1/media/download/{mxc}")
        self.assertEqual(got.content, IMAGE)

    def test_title_and_description_without_opengraph(self) -> None:
        resp = self.preview("/plain")
        self.assertEqual(
            resp.body, {"og:title": "Just a title", "og:description": "Meta description"}
        )

    def test_legacy_path_previews_too(self) -> None:
        url = quote(self.server.url("/plain"), safe="")
        resp = self.api(self.alice).get(f"/_matrix/media/v3/preview_url?url={url}")
        self.assertEqual(resp.body["og:title"], "Just a title")

    def test_image_url_is_stored_as_media(self) -> None:
        og = self.preview("/img.png").body
        self.assertTrue(og["og:image"].startswith("mxc://"))
        self.assertEqual(og["matrix:image:size"], len(IMAGE))

    def test_other_content_previews_empty(self) -> None:
        self.assertEqual(self.preview("/file.zip").body, {})

    def test_preview_is_cached(self) -> None:
        first = self.preview("/plain")
        self.assertEqual(first.status_code, 200, (first.body, self.server.hits))
        second = self.preview("/plain", user=self.bob)
        self.assertEqual(second.status_code, 200, (second.body, self.server.hits))
        self.assertEqual(first.body, second.body)
        self.assertEqual(self.server.hits["/plain"], 1)
        self.assertEqual(UrlPreview.objects.count(), 1)

    def test_cached_preview_expires(self) -> None:
        self.preview("/plain")
        UrlPreview.objects.update(expires_ts=1)
        self.preview("/plain")
        self.assertEqual(self.server.hits["/plain"], 2)

    def test_redirect_is_followed(self) -> None:
        self.assertEqual(self.preview("/to-page").body["og:title"], "A & B")

    def test_redirect_loop_fails(self) -> None:
        self.assert_matrix_error(self.preview("/loop"), 502, "M_UNKNOWN")

    def test_error_status_fails(self) -> None:
        self.assert_matrix_error(self.preview("/missing"), 502, "M_UNKNOWN")

    @override_settings(MATRIXHS_URL_PREVIEW_MAX_BYTES=4096)
    def test_declared_size_over_limit_fails(self) -> None:
        self.assert_matrix_error(self.preview("/big"), 502, "M_UNKNOWN")

    @override_settings(MATRIXHS_URL_PREVIEW_MAX_BYTES=4096)
    def test_streamed_size_over_limit_fails(self) -> None:
        self.assert_matrix_error(self.preview("/big-chunked"), 502, "M_UNKNOWN")

    @override_settings(MATRIXHS_URL_PREVIEW_TIMEOUT_S=1)
    def test_slow_page_times_out(self) -> None:
        self.assert_matrix_error(self.preview("/slow"), 502, "M_UNKNOWN")

    def test_blocked_host_is_forbidden_and_not_contacted(self) -> None:
        resp = self.preview("/page", host="127.0.0.2")
        self.assert_matrix_error(resp, 403, "M_FORBIDDEN")
        with override_settings(MATRIXHS_OUTBOUND_IP_ALLOWLIST=[]):
            self.assert_matrix_error(self.preview("/page"), 403, "M_FORBIDDEN")
            self.assert_matrix_error(self.preview("/page", host="localhost"), 403, "M_FORBIDDEN")
        self.assertEqual(self.server.hits, {})

    def test_redirect_to_blocked_host_is_forbidden(self) -> None:
        target = self.server.url("/page", host="127.0.0.2")
        self.server.routes["/away"] = lambda: (302, {"Location": target}, b"")
        self.assert_matrix_error(self.preview("/away"), 403, "M_FORBIDDEN")
        self.assertEqual(self.server.hits, {"/away": 1})

    def test_page_image_on_blocked_host_is_left_out(self) -> None:
        image = self.server.url("/img.png", host="127.0.0.2")
        page = (
            '<html><head><meta property="og:title" content="T">'
            f'<meta property="og:image" content="{image}"></head></html>'
        )
        self.server.routes["/page2"] = lambda: html(page.encode())
        self.assertEqual(self.preview("/page2").body, {"og:title": "T"})
        self.assertFalse(Media.objects.exists())

    def test_non_http_url_is_refused(self) -> None:
        for url in ("file:///etc/passwd", "ftp://example.org/", "/relative", "http://"):
            resp = self.api(self.alice).get(f"{PREVIEW}?url={quote(url, safe='')}")
            self.assert_matrix_error(resp, 400, "M_INVALID_PARAM")

    def test_url_is_required(self) -> None:
        self.assert_matrix_error(self.api(self.alice).get(PREVIEW), 400, "M_MISSING_PARAM")

    def test_needs_a_token(self) -> None:
        url = quote(self.server.url("/page"), safe="")
        self.assert_matrix_error(self.api(None).get(f"{PREVIEW}?url={url}"), 401, "M_MISSING_TOKEN")

    @override_settings(MATRIXHS_URL_PREVIEW_ENABLED=False)
    def test_disabled_previews_are_unrecognized(self) -> None:
        self.assert_matrix_error(self.preview("/page"), 404, "M_UNRECOGNIZED")
        self.assertEqual(self.server.hits, {})

    def test_page_charset_from_meta_tag(self) -> None:
        page = '<html><head><meta charset="iso-8859-1"><title>Café</title></head></html>'
        self.server.routes["/latin1"] = lambda: (
            200,
            {"Content-Type": "text/html"},
            page.encode("iso-8859-1"),
        )
        self.assertEqual(self.preview("/latin1").body, {"og:title": "Café"})
