"""Media repository tables: media (local and cached remote), thumbnails, URL previews.

The bytes live in the media storage (``STORAGES["media"]``: the file system under the
data dir, or S3) under ``storage_key``; a row exists for every object in it, and an object
is written before its row and deleted after it (media.actions), so a failure between
the two leaves an orphan file at worst, never a row without its file.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Media(models.Model):
    """One ``mxc://server_name/media_id``.

    Local media are created by an upload (``uploaded_ts`` set at once) or by
    POST /media/v1/create (``uploaded_ts`` null until the PUT, ``unused_expires_ts`` set).
    Remote media are copies fetched over federation (``user`` null).
    """

    server_name = models.CharField(max_length=255)
    media_id = models.CharField(max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="media"
    )
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    upload_name = models.CharField(max_length=255, blank=True, default="")
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    storage_key = models.CharField(max_length=512, blank=True, default="")
    created_ts = models.BigIntegerField()
    uploaded_ts = models.BigIntegerField(null=True)
    unused_expires_ts = models.BigIntegerField(null=True)
    last_access_ts = models.BigIntegerField()
    quarantined_by = models.CharField(max_length=255, blank=True, default="")
    # Images: their size and whether they are animated, read from the header at upload.
    width = models.IntegerField(null=True)
    height = models.IntegerField(null=True)
    animated = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["server_name", "media_id"], name="media_unique_mxc")
        ]
        indexes = [
            models.Index(fields=["user", "uploaded_ts"], name="media_user_uploaded"),
            models.Index(fields=["last_access_ts"], name="media_last_access"),
        ]
        verbose_name_plural = "media"

    def __str__(self) -> str:
        return self.mxc

    @property
    def mxc(self) -> str:
        return f"mxc://{self.server_name}/{self.media_id}"

    @property
    def is_quarantined(self) -> bool:
        return bool(self.quarantined_by)


class Thumbnail(models.Model):
    """A thumbnail of a media, made at upload (the configured sizes) or on demand."""

    media = models.ForeignKey(Media, on_delete=models.CASCADE, related_name="thumbnails")
    width = models.IntegerField()
    height = models.IntegerField()
    method = models.CharField(max_length=8)
    animated = models.BooleanField(default=False)
    content_type = models.CharField(max_length=64)
    size = models.BigIntegerField()
    storage_key = models.CharField(max_length=512)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["media", "width", "height", "method", "animated"],
                name="thumbnail_unique_size",
            )
        ]


class UrlPreview(models.Model):
    """A cached URL preview (OpenGraph data, its image stored as local media)."""

    url = models.CharField(max_length=2048)
    fetched_ts = models.BigIntegerField()
    expires_ts = models.BigIntegerField()
    og = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["url", "fetched_ts"], name="url_preview_url_ts")]
