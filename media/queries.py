"""Reads of the media repository: which media a request may have, thumbnails to serve,
the media config, and the media of a user or room (for the operators' tools)."""

from __future__ import annotations

import re
import time
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet

from matrixhs.errors import Codes, InvalidParam, MatrixError, NotFound
from matrixhs.protocol.ids import is_valid_media_id, is_valid_server_name
from matrixhs.time import now_ms
from media.models import Media, Thumbnail, UrlPreview
from media.remote import fetch_remote_media

#: How often a download waiting for a pending upload looks again (seconds).
_WAIT_STEP_S = 0.25
_MXC_RE = re.compile(r"mxc://([A-Za-z0-9.:\[\]\-]+)/([A-Za-z0-9_\-]+)")


def media_config() -> dict[str, Any]:
    return {"m.upload.size": settings.MATRIXHS_MAX_UPLOAD_BYTES}


def check_mxc(server_name: str, media_id: str) -> None:
    """Raises: InvalidParam: not a server name, or a media ID outside A-Za-z0-9_-."""
    if not is_valid_server_name(server_name):
        raise InvalidParam("Invalid server name")
    if not is_valid_media_id(media_id):
        raise InvalidParam("Invalid media ID: only A-Z, a-z, 0-9, _ and - are allowed")


def is_frozen_for_legacy(media: Media) -> bool:
    """Spec 1.11: the unauthenticated endpoints serve only media from before the freeze."""
    freeze = settings.MATRIXHS_MEDIA_LEGACY_FREEZE_MS
    return freeze >= 0 and media.created_ts >= freeze


def access_media(
    server_name: str,
    media_id: str,
    timeout_ms: int = 0,
    legacy: bool = False,
    allow_remote: bool = True,
) -> Media:
    """The media a download or thumbnail request names, once it has content.

    Args:
        timeout_ms: how long to wait for a pending upload (capped by a setting).
        legacy: the request came through an unauthenticated /_matrix/media/v3 endpoint.
        allow_remote: whether media of other servers not stored here may be fetched.

    Raises:
        InvalidParam: a malformed server name or media ID.
        NotFound: unknown, quarantined, expired, remote and not fetchable, or frozen
            for the legacy endpoints.
        MatrixError: 504 M_NOT_YET_UPLOADED, still pending after the timeout.
    """
    check_mxc(server_name, media_id)
    media = Media.objects.filter(server_name=server_name, media_id=media_id).first()
    if media is None:
        if server_name == settings.MATRIXHS_SERVER_NAME or not allow_remote:
            raise NotFound("Unknown media")
        media = fetch_remote_media(server_name, media_id)
    if media.is_quarantined or (legacy and is_frozen_for_legacy(media)):
        raise NotFound("Unknown media")
    if media.uploaded_ts is None:
        media = _wait_for_upload(media, timeout_ms)
    return media


def _wait_for_upload(media: Media, timeout_ms: int) -> Media:
    deadline = time.monotonic() + min(timeout_ms, settings.MATRIXHS_MEDIA_MAX_WAIT_MS) / 1000
    while True:
        if media.unused_expires_ts is not None and media.unused_expires_ts < now_ms():
            raise NotFound("Unknown media")
        if time.monotonic() >= deadline:
            raise MatrixError(504, Codes.NOT_YET_UPLOADED, "Content has not yet been uploaded")
        time.sleep(_WAIT_STEP_S)
        media = Media.objects.get(pk=media.pk)
        if media.uploaded_ts is not None:
            return media


def thumbnail_size(width: int, height: int, method: str) -> tuple[int, int, str]:
    """The size to serve: the smallest configured one that is at least as large as
    asked (same method), else the asked size itself, each side capped."""
    fits = [
        (w * h, w, h)
        for w, h, m in settings.MATRIXHS_THUMBNAIL_SIZES
        if m == method and w >= width and h >= height
    ]
    if fits:
        _, w, h = min(fits)
        return w, h, method
    cap = settings.MATRIXHS_MAX_THUMBNAIL_SIDE
    return min(width, cap), min(height, cap), method


def cached_thumbnail(
    media: Media, width: int, height: int, method: str, animated: bool
) -> Thumbnail | None:
    return Thumbnail.objects.filter(
        media=media, width=width, height=height, method=method, animated=animated
    ).first()


def media_of_user(user_id: str) -> QuerySet[Media]:
    return Media.objects.filter(user__user_id=user_id).order_by("pk")


def mxc_uris_in_room(room_id: str) -> set[tuple[str, str]]:
    """Every mxc:// URI that an event of the room mentions (its content), as
    (server name, media ID)."""
    from rooms.models import Event

    found: set[tuple[str, str]] = set()
    events = Event.objects.filter(room__room_id=room_id).values_list("json", flat=True)
    for raw in events.iterator(chunk_size=500):
        found.update(_MXC_RE.findall(raw))
    return found


def media_in_room(room_id: str) -> QuerySet[Media]:
    """The media the room's events mention (one IN list per server, not one OR term per
    URI: SQLite limits the depth of an expression)."""
    by_server: dict[str, list[str]] = {}
    for server_name, media_id in mxc_uris_in_room(room_id):
        by_server.setdefault(server_name, []).append(media_id)
    match = Q(pk__in=[])
    for server_name, media_ids in by_server.items():
        match |= Q(server_name=server_name, media_id__in=media_ids)
    return Media.objects.filter(match).order_by("pk")


def media_not_accessed_since(before_ts: int, local: bool, remote: bool) -> QuerySet[Media]:
    """What a retention purge removes: media not accessed since ``before_ts`` (local
    and/or remote), and created IDs that expired without an upload."""
    ours = settings.MATRIXHS_SERVER_NAME
    kinds = Q(pk__in=[])
    if local:
        kinds |= Q(server_name=ours)
    if remote:
        kinds |= ~Q(server_name=ours)
    stale = kinds & Q(last_access_ts__lt=before_ts)
    expired = Q(uploaded_ts__isnull=True, unused_expires_ts__lt=now_ms())
    return Media.objects.filter(stale | expired).order_by("pk")


def cached_url_preview(url: str, now: int) -> dict[str, Any] | None:
    """The freshest cached preview of ``url`` that has not expired."""
    preview = UrlPreview.objects.filter(url=url, expires_ts__gt=now).order_by("-fetched_ts").first()
    return dict(preview.og) if preview is not None else None


DAY_MS = 24 * 3600 * 1000


def retention_targets(
    local_days: int, remote_days: int, now: int
) -> list[tuple[str, QuerySet[Media]]]:
    """What retention deletes, by kind ("local", "remote"): media not accessed for that
    many days (0 keeps that kind), and expired unused IDs (with the local kind)."""
    local = media_not_accessed_since(now - local_days * DAY_MS, local=local_days > 0, remote=False)
    remote = media_not_accessed_since(
        now - remote_days * DAY_MS, local=False, remote=remote_days > 0
    ).exclude(uploaded_ts__isnull=True)
    return [("local", local), ("remote", remote)]
