"""Every write of the media repository: uploads, thumbnails, quarantine, deletion, purge.

Bytes are written to the storage first, then the row is inserted; if the row cannot be
(quota, a lost race, any error), the bytes are deleted again. Rows are deleted first,
then the bytes: a half-finished upload or deletion leaves no row pointing at nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Sum

from accounts.models import User
from matrixhs.errors import Codes, Forbidden, LimitExceeded, MatrixError, NotFound, TooLarge
from matrixhs.time import now_ms
from media import storage, thumbnails
from media.models import Media, Thumbnail, UrlPreview
from media.storage import CountingReader, Readable

logger = logging.getLogger(__name__)

_CONTENT_TYPE_RE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(;[ -~]*)?\Z")
#: How often a download refreshes ``last_access_ts`` (one write a minute at most).
ACCESS_RESOLUTION_MS = 60_000


def clean_content_type(value: str | None) -> str:
    """The upload's Content-Type, or application/octet-stream when absent or malformed."""
    value = (value or "").strip()
    if not value or len(value) > 255 or not _CONTENT_TYPE_RE.match(value):
        return "application/octet-stream"
    return value


def clean_filename(value: str | None) -> str:
    """The upload's file name without control characters (it goes into a header)."""
    return "".join(ch for ch in (value or "") if ch.isprintable())[:255]


def new_media_id() -> str:
    return secrets.token_urlsafe(18)  # 24 characters of A-Za-z0-9_-


# --- Limits -------------------------------------------------------------------------------


def check_upload_size(declared: int | None) -> None:
    """Refuse a declared Content-Length over the limit before reading anything.

    Raises:
        TooLarge: over MATRIXHS_MAX_UPLOAD_BYTES.
    """
    limit = settings.MATRIXHS_MAX_UPLOAD_BYTES
    if declared is not None and declared > limit:
        raise TooLarge(f"Cannot upload files larger than {limit} bytes")


def _check_quota(user: User, adding: int) -> None:
    """Raises: Forbidden: the user's stored media would exceed their quota."""
    quota = settings.MATRIXHS_MEDIA_USER_QUOTA_BYTES
    if quota <= 0:
        return
    used = Media.objects.filter(user=user, uploaded_ts__isnull=False).aggregate(s=Sum("size"))
    if (used["s"] or 0) + adding > quota:
        raise Forbidden("Media quota exceeded: delete some media first")


def check_can_upload(user: User, declared: int | None) -> None:
    """The checks that can be made before the body is read.

    Raises:
        TooLarge: the declared size is over the limit.
        Forbidden: the declared size would exceed the user's quota.
    """
    check_upload_size(declared)
    _check_quota(user, declared or 0)


# --- Uploads ------------------------------------------------------------------------------


def _store(body: Readable, server_name: str, media_id: str) -> tuple[str, CountingReader]:
    reader = CountingReader(body, settings.MATRIXHS_MAX_UPLOAD_BYTES)
    key = storage.save(storage.new_key("local", server_name, media_id), reader)
    return key, reader


def do_upload(
    user: User,
    body: Readable,
    content_type: str | None,
    filename: str | None,
    declared: int | None,
) -> Media:
    """POST /upload: store the body under a new media ID.

    Raises:
        TooLarge: the body is over MATRIXHS_MAX_UPLOAD_BYTES.
        Forbidden: over the user's quota.
    """
    check_can_upload(user, declared)
    server_name, media_id = settings.MATRIXHS_SERVER_NAME, new_media_id()
    key, reader = _store(body, server_name, media_id)
    try:
        with transaction.atomic():
            User.objects.select_for_update().filter(pk=user.pk).first()  # quota: one at a time
            _check_quota(user, reader.size)
            now = now_ms()
            media = Media.objects.create(
                server_name=server_name,
                media_id=media_id,
                user=user,
                content_type=clean_content_type(content_type),
                upload_name=clean_filename(filename),
                size=reader.size,
                sha256=reader.sha256.hexdigest(),
                storage_key=key,
                created_ts=now,
                uploaded_ts=now,
                last_access_ts=now,
            )
    except BaseException:
        storage.delete(key)
        raise
    do_generate_thumbnails(media)
    return media


def do_create_media_id(user: User) -> Media:
    """POST /media/v1/create: a media ID whose content comes later by PUT.

    Raises:
        LimitExceeded: the user has too many pending uploads.
    """
    now = now_ms()
    pending = Media.objects.filter(
        user=user, uploaded_ts__isnull=True, unused_expires_ts__gt=now
    ).count()
    if pending >= settings.MATRIXHS_MEDIA_MAX_PENDING_UPLOADS:
        raise LimitExceeded(retry_after_ms=60_000)
    return Media.objects.create(
        server_name=settings.MATRIXHS_SERVER_NAME,
        media_id=new_media_id(),
        user=user,
        created_ts=now,
        unused_expires_ts=now + settings.MATRIXHS_MEDIA_UNUSED_EXPIRY_MS,
        last_access_ts=now,
    )


def check_pending_upload(user: User, server_name: str, media_id: str) -> Media:
    """The pending media a PUT /upload/{serverName}/{mediaId} fills.

    Raises:
        NotFound: not an ID created here, or it expired.
        Forbidden: created by another user.
        MatrixError: 409 M_CANNOT_OVERWRITE_MEDIA, it has content already.
    """
    media = Media.objects.filter(
        server_name=settings.MATRIXHS_SERVER_NAME, media_id=media_id
    ).first()
    if server_name != settings.MATRIXHS_SERVER_NAME or media is None or media.user_id is None:
        raise NotFound("Unknown media ID")
    if media.user_id != user.pk:
        raise Forbidden("This media ID was created by another user")
    if media.uploaded_ts is not None:
        raise MatrixError(409, Codes.CANNOT_OVERWRITE_MEDIA, "Media already uploaded")
    if media.unused_expires_ts is not None and media.unused_expires_ts < now_ms():
        raise NotFound("This media ID has expired")
    return media


def do_upload_pending(
    user: User,
    media: Media,
    body: Readable,
    content_type: str | None,
    filename: str | None,
    declared: int | None,
) -> Media:
    """PUT /upload/{serverName}/{mediaId}: the content of a created media ID.

    Raises:
        TooLarge, Forbidden: as :func:`do_upload`.
        MatrixError: 409 M_CANNOT_OVERWRITE_MEDIA, another upload finished first.
    """
    check_can_upload(user, declared)
    key, reader = _store(body, media.server_name, media.media_id)
    now = now_ms()
    fields: dict[str, Any] = {
        "content_type": clean_content_type(content_type),
        "upload_name": clean_filename(filename),
        "size": reader.size,
        "sha256": reader.sha256.hexdigest(),
        "storage_key": key,
        "uploaded_ts": now,
        "unused_expires_ts": None,
        "last_access_ts": now,
    }
    try:
        with transaction.atomic():
            User.objects.select_for_update().filter(pk=user.pk).first()
            _check_quota(user, reader.size)
            claimed = Media.objects.filter(pk=media.pk, uploaded_ts__isnull=True).update(**fields)
            if not claimed:
                raise MatrixError(409, Codes.CANNOT_OVERWRITE_MEDIA, "Media already uploaded")
    except BaseException:
        storage.delete(key)
        raise
    media.refresh_from_db()
    do_generate_thumbnails(media)
    return media


def do_record_access(media: Media) -> None:
    """Note a download (for retention), at most one write a minute per media."""
    now = now_ms()
    if media.last_access_ts < now - ACCESS_RESOLUTION_MS:
        Media.objects.filter(pk=media.pk, last_access_ts__lt=now - ACCESS_RESOLUTION_MS).update(
            last_access_ts=now
        )


# --- Thumbnails ---------------------------------------------------------------------------


def do_inspect_image(media: Media) -> None:
    """Read an image's size from its header into the row.

    Raises:
        thumbnails.CannotThumbnail: not a readable image.
        thumbnails.ImageTooLarge: over the pixel limit.
    """
    with storage.open_seekable(media.storage_key) as source:
        info = thumbnails.inspect(source, settings.MATRIXHS_MAX_IMAGE_PIXELS)
    media.width, media.height, media.animated = info.width, info.height, info.animated
    media.save(update_fields=["width", "height", "animated"])


def do_generate_thumbnails(media: Media) -> None:
    """Make the configured thumbnail sizes of a new image, from one decoding (none for
    other content, or for an image that cannot be read or is over the pixel limit)."""
    if not thumbnails.can_thumbnail(media.content_type):
        return
    specs = settings.MATRIXHS_THUMBNAIL_SIZES
    try:
        do_inspect_image(media)
        with storage.open_seekable(media.storage_key) as source:
            rendered = thumbnails.render_static_all(
                source, specs, settings.MATRIXHS_MAX_IMAGE_PIXELS
            )
    except (thumbnails.CannotThumbnail, thumbnails.ImageTooLarge):
        return
    for (width, height, method), image in zip(specs, rendered, strict=True):
        _store_thumbnail(media, width, height, method, False, image)


def do_make_thumbnail(
    media: Media, width: int, height: int, method: str, animated: bool
) -> Thumbnail:
    """The cached thumbnail of this size, made now if there is none.

    Raises:
        thumbnails.CannotThumbnail: not a readable image.
        thumbnails.ImageTooLarge: over the pixel limit.
    """
    existing = Thumbnail.objects.filter(
        media=media, width=width, height=height, method=method, animated=animated
    ).first()
    if existing is not None:
        return existing
    with storage.open_seekable(media.storage_key) as source:
        rendered = thumbnails.render(
            source, (width, height), method, animated, settings.MATRIXHS_MAX_IMAGE_PIXELS
        )
    return _store_thumbnail(media, width, height, method, animated, rendered)


@dataclass(frozen=True)
class Served:
    """What a thumbnail request is answered with: a stored object and its type."""

    storage_key: str
    size: int
    content_type: str


def do_get_thumbnail(media: Media, width: int, height: int, method: str, animated: bool) -> Served:
    """The thumbnail to serve: the original when it is no larger than asked (and of a
    thumbnail type, and not animated unless animation is asked), else the cached
    thumbnail of the size queries.thumbnail_size picks, made now if missing.

    Raises:
        MatrixError: 400 M_UNKNOWN, not an image we can thumbnail; 413 (local) or 502
            (remote) M_TOO_LARGE, over the pixel limit.
    """
    from media.queries import thumbnail_size

    try:
        if not thumbnails.can_thumbnail(media.content_type):
            raise thumbnails.CannotThumbnail()
        if media.width is None or media.height is None:
            do_inspect_image(media)
        do_record_access(media)
        content_type = media.content_type.split(";")[0].strip().lower()
        if (
            (media.width or 0) <= width
            and (media.height or 0) <= height
            and content_type in thumbnails.THUMBNAIL_TYPES
            and (animated or not media.animated)
        ):
            return Served(media.storage_key, media.size, content_type)
        size = thumbnail_size(width, height, method)
        thumb = do_make_thumbnail(media, *size, animated=animated and media.animated)
    except thumbnails.CannotThumbnail as exc:
        raise MatrixError(
            400, Codes.UNKNOWN, "Cannot generate thumbnails for the requested content"
        ) from exc
    except thumbnails.ImageTooLarge as exc:
        local = media.server_name == settings.MATRIXHS_SERVER_NAME
        raise MatrixError(
            413 if local else 502, Codes.TOO_LARGE, "Content is too large to thumbnail"
        ) from exc
    return Served(thumb.storage_key, thumb.size, thumb.content_type)


def _store_thumbnail(
    media: Media,
    width: int,
    height: int,
    method: str,
    animated: bool,
    rendered: thumbnails.Rendered,
) -> Thumbnail:
    """Store a rendered thumbnail and its row; if another request stored the same size
    first, keep theirs."""
    suffix = "." + rendered.content_type.split("/")[1]
    key = storage.new_key("thumbnail", media.server_name, media.media_id, suffix)
    key = storage.save(key, ContentFile(rendered.data))
    try:
        with transaction.atomic():
            return Thumbnail.objects.create(
                media=media,
                width=width,
                height=height,
                method=method,
                animated=animated,
                content_type=rendered.content_type,
                size=len(rendered.data),
                storage_key=key,
            )
    except IntegrityError:
        storage.delete(key)
        return Thumbnail.objects.get(
            media=media, width=width, height=height, method=method, animated=animated
        )
    except BaseException:
        storage.delete(key)
        raise


# --- Quarantine, deletion, retention ------------------------------------------------------


def do_quarantine_media(media: Iterable[Media], by: str) -> int:
    """Quarantine: the media stay stored but are served to nobody. Returns how many."""
    ids = [m.pk for m in media]
    return Media.objects.filter(pk__in=ids, quarantined_by="").update(quarantined_by=by or "admin")


def do_unquarantine_media(media: Iterable[Media]) -> int:
    return Media.objects.filter(pk__in=[m.pk for m in media]).update(quarantined_by="")


def do_delete_media(media: Iterable[Media], progress: Callable[[], None] | None = None) -> int:
    """Delete media and their thumbnails: rows first, then the stored objects."""
    count = 0
    for item in media:
        keys = [item.storage_key, *item.thumbnails.values_list("storage_key", flat=True)]
        item.delete()
        for key in keys:
            try:
                storage.delete(key)
            except OSError:
                logger.warning("Could not delete stored object %s", key, exc_info=True)
        count += 1
        if progress is not None:
            progress()
    return count


def do_purge_by_retention() -> int:
    """The periodic retention job (matrixhs.background): what `manage.py purge_media`
    does with the settings' days. Returns how many media were deleted."""
    from media.queries import retention_targets

    targets = retention_targets(
        settings.MATRIXHS_MEDIA_RETENTION_LOCAL_DAYS,
        settings.MATRIXHS_MEDIA_RETENTION_REMOTE_DAYS,
        now_ms(),
    )
    return sum(do_delete_media(media.iterator()) for _, media in targets)


# --- URL previews -------------------------------------------------------------------------


def do_store_preview_image(data: bytes, content_type: str, filename: str) -> Media:
    """A URL preview's image, kept as local media of no user (so under no quota)."""
    server_name, media_id = settings.MATRIXHS_SERVER_NAME, new_media_id()
    key = storage.save(storage.new_key("local", server_name, media_id), ContentFile(data))
    now = now_ms()
    try:
        media = Media.objects.create(
            server_name=server_name,
            media_id=media_id,
            content_type=clean_content_type(content_type),
            upload_name=clean_filename(filename),
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            storage_key=key,
            created_ts=now,
            uploaded_ts=now,
            last_access_ts=now,
        )
    except BaseException:
        storage.delete(key)
        raise
    do_generate_thumbnails(media)
    return media


def do_cache_url_preview(url: str, og: dict[str, Any]) -> UrlPreview:
    now = now_ms()
    UrlPreview.objects.filter(url=url, expires_ts__lt=now).delete()
    return UrlPreview.objects.create(
        url=url, fetched_ts=now, expires_ts=now + settings.MATRIXHS_URL_PREVIEW_CACHE_MS, og=og
    )
