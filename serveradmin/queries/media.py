"""Reads of media for the admin API."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from accounts.models import User
from matrixhs.errors import InvalidParam, JsonDict
from media.models import Media

#: Synapse's ``order_by`` values for a user's media and the columns they sort by.
MEDIA_ORDER = {
    "media_id": "media_id",
    "upload_name": "upload_name",
    "created_ts": "created_ts",
    "last_access_ts": "last_access_ts",
    "media_length": "size",
    "media_type": "content_type",
    "quarantined_by": "quarantined_by",
    "safe_from_quarantine": "created_ts",
}


def format_media(media: Media) -> JsonDict:
    return {
        "media_id": media.media_id,
        "media_type": media.content_type,
        "media_length": media.size,
        "upload_name": media.upload_name or None,
        "created_ts": media.created_ts,
        "last_access_ts": media.last_access_ts,
        "quarantined_by": media.quarantined_by or None,
        "safe_from_quarantine": False,
    }


def user_media(user: User, order_by: str, backwards: bool) -> QuerySet[Media]:
    """Raises: InvalidParam: an unknown ``order_by``."""
    column = MEDIA_ORDER.get(order_by)
    if column is None:
        raise InvalidParam(f"Unknown order_by {order_by!r}")
    return Media.objects.filter(user=user).order_by(
        f"-{column}" if backwards else column, "-pk" if backwards else "pk"
    )


def local_media_before(before_ts: int, size_gt: int, keep_profiles: bool) -> QuerySet[Media]:
    """Local media last accessed before ``before_ts`` and larger than ``size_gt`` bytes;
    with ``keep_profiles``, not those in use as a user's avatar."""
    media = Media.objects.filter(
        server_name=settings.MATRIXHS_SERVER_NAME, last_access_ts__lt=before_ts, size__gt=size_gt
    )
    if keep_profiles:
        prefix = f"mxc://{settings.MATRIXHS_SERVER_NAME}/"
        avatars = {
            url[len(prefix) :]
            for url in User.objects.filter(avatar_url__startswith=prefix).values_list(
                "avatar_url", flat=True
            )
        }
        media = media.exclude(media_id__in=avatars)
    return media
