"""Media of other servers: fetched from their origin on first request
(``GET /_matrix/federation/v1/media/download/{mediaId}``, a multipart answer whose second
part is the content or a ``Location`` to fetch it from), stored like our own media under
a ``remote/`` key, and served from that copy afterwards. Thumbnails are made here from the
copy, as for local media.

A copy is written once: requests for the same media in this process wait for the first
fetch, and a second process fetching at the same time keeps the first row stored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction

from federation import peers
from matrixhs.errors import Codes, MatrixError, NotFound, TooLarge
from matrixhs.outbound import outbound_client
from matrixhs.time import now_ms
from media import storage
from media.models import Media
from media.multipart import MalformedMultipart, MediaPart, boundary_of, filename_of
from media.storage import CountingReader, Readable

logger = logging.getLogger(__name__)

_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


@contextmanager
def _one_fetch(server_name: str, media_id: str) -> Iterator[None]:
    key = (server_name, media_id)
    with _locks_guard:
        lock = _locks.setdefault(key, threading.Lock())
    try:
        with lock:
            yield
    finally:
        with _locks_guard:
            if not lock.locked():
                _locks.pop(key, None)


class _Chunks:
    """A response body as a file the storage reads from."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._rest = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._rest) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._rest += chunk
        if size < 0:
            data, self._rest = self._rest, b""
        else:
            data, self._rest = self._rest[:size], self._rest[size:]
        return data


def fetch_remote_media(server_name: str, media_id: str) -> Media:
    """The copy of ``mxc://server_name/media_id``, fetched from its origin if need be.

    Raises:
        NotFound: the origin has no such media (or federation is off).
        TooLarge: it is over MATRIXHS_MAX_UPLOAD_BYTES.
        MatrixError: 502 M_UNKNOWN, the origin could not be reached or answered nonsense.
    """
    if not settings.MATRIXHS_FEDERATION_ENABLED:
        raise NotFound(f"Remote media mxc://{server_name}/{media_id} is not available")
    with _one_fetch(server_name, media_id):
        existing = Media.objects.filter(server_name=server_name, media_id=media_id).first()
        if existing is not None:
            return existing
        try:
            return _fetch(server_name, media_id)
        except (NotFound, TooLarge):
            raise
        except MatrixError as exc:
            if exc.status == 404:
                raise NotFound(f"mxc://{server_name}/{media_id} was not found") from exc
            raise MatrixError(502, Codes.UNKNOWN, f"{server_name}: {exc.msg}") from exc
        except (httpx.HTTPError, MalformedMultipart, OSError) as exc:
            logger.info("Fetching mxc://%s/%s failed: %s", server_name, media_id, exc)
            raise MatrixError(
                502, Codes.UNKNOWN, f"Could not fetch mxc://{server_name}/{media_id}"
            ) from exc


def _fetch(server_name: str, media_id: str) -> Media:
    with peers.remote().media_download(server_name, media_id) as response:
        part = MediaPart(
            response.iter_bytes(), boundary_of(response.headers.get("content-type", ""))
        )
        location = part.headers.get("location")
        if not location:
            return _store(
                server_name,
                media_id,
                part,
                part.headers.get("content-type"),
                part.headers.get("content-disposition", ""),
            )
    # The redirect form: the bytes are at a URL (plain HTTPS, checked like any outbound).
    with outbound_client(timeout=httpx.Timeout(settings.MATRIXHS_FEDERATION_TIMEOUT_S)) as http:
        with http.stream("GET", location, follow_redirects=True) as redirected:
            if redirected.status_code == 404:
                raise NotFound(f"mxc://{server_name}/{media_id} was not found")
            if not redirected.is_success:
                raise MatrixError(
                    502, Codes.UNKNOWN, f"{location} answered {redirected.status_code}"
                )
            return _store(
                server_name,
                media_id,
                _Chunks(redirected.iter_bytes()),
                redirected.headers.get("content-type"),
                redirected.headers.get("content-disposition", ""),
            )


def _store(
    server_name: str,
    media_id: str,
    body: Readable,
    content_type: str | None,
    content_disposition: str,
) -> Media:
    from media.actions import clean_content_type, clean_filename, do_generate_thumbnails

    reader = CountingReader(body, settings.MATRIXHS_MAX_UPLOAD_BYTES, name="remote")
    key = storage.save(storage.new_key("remote", server_name, media_id), reader)
    now = now_ms()
    try:
        with transaction.atomic():
            media = Media.objects.create(
                server_name=server_name,
                media_id=media_id,
                content_type=clean_content_type(content_type),
                upload_name=clean_filename(filename_of(content_disposition)),
                size=reader.size,
                sha256=reader.sha256.hexdigest(),
                storage_key=key,
                created_ts=now,
                uploaded_ts=now,
                last_access_ts=now,
            )
    except IntegrityError:  # another process stored it first: keep theirs
        storage.delete(key)
        return Media.objects.get(server_name=server_name, media_id=media_id)
    except BaseException:
        storage.delete(key)
        raise
    do_generate_thumbnails(media)
    return media
