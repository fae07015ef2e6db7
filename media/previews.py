"""URL previews: fetch a page (through matrixhs.outbound, which never reaches blocked
addresses), read its OpenGraph data (or its title and description), store its image as
local media, and cache the result.

Limits: MATRIXHS_URL_PREVIEW_MAX_BYTES for the page and for its image, and
MATRIXHS_URL_PREVIEW_TIMEOUT_S for each of them from first byte sent to last byte read.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from django.conf import settings

from accounts.models import User
from matrixhs.errors import Codes, Forbidden, InvalidParam, MatrixError, Unrecognized
from matrixhs.outbound import AddressBlocked, outbound_client
from matrixhs.time import now_ms
from media import actions, queries

_MAX_OG_VALUE = 1000  # characters kept of a title, description, ...
_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)


class PreviewFailed(MatrixError):
    def __init__(self, msg: str) -> None:
        super().__init__(502, Codes.UNKNOWN, msg)


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    content_type: str
    charset: str | None
    body: bytes


def check_preview_url(url: str) -> str:
    """Raises: InvalidParam: not an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParam("url must be an absolute http or https URL")
    return url


def preview_url(user: User, url: str) -> dict[str, Any]:
    """The OpenGraph data of ``url``, from the cache when fresh.

    Raises:
        Unrecognized: previews are turned off.
        InvalidParam: not an http(s) URL.
        Forbidden: the host's addresses are all blocked.
        PreviewFailed: 502, the page could not be fetched within the limits.
    """
    if not settings.MATRIXHS_URL_PREVIEW_ENABLED:
        raise Unrecognized("URL previews are disabled")
    check_preview_url(url)
    cached = queries.cached_url_preview(url, now_ms())
    if cached is not None:
        return cached
    with outbound_client(
        follow_redirects=True,
        max_redirects=settings.MATRIXHS_URL_PREVIEW_MAX_REDIRECTS,
        timeout=settings.MATRIXHS_URL_PREVIEW_TIMEOUT_S,
        headers={"User-Agent": "matrixhs URL preview", "Accept-Language": "en"},
    ) as client:
        page = fetch(client, url)
        if page.content_type.startswith("image/"):
            og = _image_og(client, page, page.url)
        elif page.content_type in ("text/html", "application/xhtml+xml"):
            og = parse_html(page.body, page.charset, page.url)
            image_url = og.pop("og:image", None)
            if image_url:
                try:
                    og.update(_image_og(client, fetch(client, image_url), image_url))
                except (MatrixError, httpx.HTTPError):
                    pass  # a page whose image cannot be had is previewed without it
        else:
            og = {}
    actions.do_cache_url_preview(url, og)
    return og


def fetch(client: httpx.Client, url: str) -> Fetched:
    """GET ``url`` within the size and time limits.

    Raises:
        Forbidden: blocked address (first request or a redirect).
        PreviewFailed: any other failure, a non-200 answer, too large or too slow.
    """
    limit = settings.MATRIXHS_URL_PREVIEW_MAX_BYTES
    deadline = time.monotonic() + settings.MATRIXHS_URL_PREVIEW_TIMEOUT_S
    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise PreviewFailed(f"The URL answered {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise PreviewFailed("The content is too large to preview")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise PreviewFailed("The content is too large to preview")
                if time.monotonic() > deadline:
                    raise PreviewFailed("The URL took too long to answer")
            content_type = response.headers.get("Content-Type", "").split(";")[0]
            return Fetched(
                str(response.url),
                content_type.strip().lower(),
                response.charset_encoding,
                bytes(body),
            )
    except AddressBlocked as exc:
        raise Forbidden("URL previews of this address are not allowed") from exc
    except httpx.HTTPError as exc:
        raise PreviewFailed(f"Could not fetch the URL: {type(exc).__name__}") from exc


def _image_og(client: httpx.Client, image: Fetched, url: str) -> dict[str, Any]:
    """Store an image as local media; its OpenGraph fields."""
    if not image.content_type.startswith("image/"):
        return {}
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    media = actions.do_store_preview_image(image.body, image.content_type, name)
    og: dict[str, Any] = {
        "og:image": media.mxc,
        "og:image:type": media.content_type,
        "matrix:image:size": media.size,
    }
    if media.width is not None and media.height is not None:
        og.update({"og:image:width": media.width, "og:image:height": media.height})
    return og


class _HeadParser(HTMLParser):
    """Collects og:* and description meta tags, and the first <title>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title: str | None = None
        self.charset: str | None = None
        self._in_title = False
        self._title_parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): v or "" for k, v in attrs}
        if tag == "meta":
            key = (values.get("property") or values.get("name") or "").strip().lower()
            content = values.get("content")
            if content is not None and (key.startswith("og:") or key == "description"):
                self.meta.setdefault(key, content.strip()[:_MAX_OG_VALUE])
        elif tag == "title" and self.title is None:
            self._in_title = True

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self._in_title = False
            self.title = " ".join("".join(self._title_parts).split())[:_MAX_OG_VALUE]


def parse_html(body: bytes, charset: str | None, base_url: str) -> dict[str, Any]:
    """OpenGraph data of a page; title and description from <title> and
    <meta name="description"> when it has no og: ones. ``og:image`` is made absolute.

    The text is decoded with the charset of the Content-Type, else of a
    ``<meta charset>`` near the top, else as UTF-8.
    """
    if charset is None:
        declared = _META_CHARSET_RE.search(body[:2048])
        charset = declared.group(1).decode("ascii") if declared else None
    try:
        text = body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    parser = _HeadParser()
    parser.feed(text)
    parser.close()
    og: dict[str, Any] = {k: v for k, v in parser.meta.items() if k.startswith("og:")}
    if "og:title" not in og and parser.title:
        og["og:title"] = parser.title
    if "og:description" not in og and parser.meta.get("description"):
        og["og:description"] = parser.meta["description"]
    image = og.pop("og:image", None) or og.pop("og:image:url", None)
    og.pop("og:image:secure_url", None)
    for key in ("og:image:width", "og:image:height", "og:image:type"):
        og.pop(key, None)  # describe the page's image, not the copy we store
    if image:
        absolute = urljoin(base_url, image)
        if urlsplit(absolute).scheme in ("http", "https"):
            og["og:image"] = absolute
    return og
