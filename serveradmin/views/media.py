"""Media: quarantine, deletion by ID, by date and by user (/_synapse/admin/v1/...)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from rest_framework.request import Request
from rest_framework.response import Response

from matrixhs.errors import InvalidParam, MissingParam, NotFound
from matrixhs.http import query_bool, query_int
from media.actions import do_delete_media, do_quarantine_media, do_unquarantine_media
from media.models import Media
from media.queries import media_in_room, media_of_user, mxc_uris_in_room
from serveradmin.queries import media as queries
from serveradmin.views.base import (
    AdminView,
    get_local_user_or_404,
    page_params,
    paged,
    room_or_404,
)


def _media_or_404(server_name: str, media_id: str) -> Media:
    media = Media.objects.filter(server_name=server_name, media_id=media_id).first()
    if media is None:
        raise NotFound("Media not found")
    return media


def _local(server_name: str) -> None:
    """Raises: InvalidParam: deleting is for this server's media only."""
    if server_name != settings.MATRIXHS_SERVER_NAME:
        raise InvalidParam("Can only delete local media")


class QuarantineMediaView(AdminView):
    """POST /_synapse/admin/v1/media/quarantine/{serverName}/{mediaId}."""

    def post(self, request: Request, server_name: str, media_id: str) -> Response:
        media = _media_or_404(server_name, media_id)
        with transaction.atomic():
            do_quarantine_media([media], request.requester.user_id)
            self.audit(request, "media.quarantine", media.mxc)
        return Response({})


class UnquarantineMediaView(AdminView):
    """POST /_synapse/admin/v1/media/unquarantine/{serverName}/{mediaId}."""

    def post(self, request: Request, server_name: str, media_id: str) -> Response:
        media = _media_or_404(server_name, media_id)
        with transaction.atomic():
            do_unquarantine_media([media])
            self.audit(request, "media.unquarantine", media.mxc)
        return Response({})


class MediaView(AdminView):
    """DELETE /_synapse/admin/v1/media/{serverName}/{mediaId}."""

    def delete(self, request: Request, server_name: str, media_id: str) -> Response:
        _local(server_name)
        media = _media_or_404(server_name, media_id)
        with transaction.atomic():
            self.audit(request, "media.delete", media.mxc)
        do_delete_media([media])
        return Response({"deleted_media": [media_id], "total": 1})


class DeleteMediaBeforeView(AdminView):
    """POST /_synapse/admin/v1/media/delete?before_ts=... (and .../media/{server}/delete)."""

    def post(self, request: Request, server_name: str | None = None) -> Response:
        if server_name is not None:
            _local(server_name)
        if "before_ts" not in request.query_params:
            raise MissingParam("Missing parameter: before_ts")
        before_ts = query_int(request, "before_ts", 0)
        size_gt = query_int(request, "size_gt", 0)
        keep_profiles = query_bool(request, "keep_profiles", True)
        media = list(queries.local_media_before(before_ts, size_gt, keep_profiles))
        with transaction.atomic():
            self.audit(
                request,
                "media.delete_before",
                settings.MATRIXHS_SERVER_NAME,
                before_ts=before_ts,
                size_gt=size_gt,
                count=len(media),
            )
        do_delete_media(media)
        return Response({"deleted_media": [m.media_id for m in media], "total": len(media)})


class UserMediaView(AdminView):
    """GET and DELETE /_synapse/admin/v1/users/{userId}/media."""

    def get(self, request: Request, user_id: str) -> Response:
        user = get_local_user_or_404(user_id)
        start, limit, backwards = page_params(request)
        order_by = request.query_params.get("order_by", "created_ts")
        media = queries.user_media(user, order_by, backwards)
        page = [queries.format_media(m) for m in media[start : start + limit]]
        body = paged("media", page, start, limit, media.count())
        if "next_token" in body:
            body["next_token"] = int(body["next_token"])
        return Response(body)

    def delete(self, request: Request, user_id: str) -> Response:
        user = get_local_user_or_404(user_id)
        start, limit, backwards = page_params(request)
        order_by = request.query_params.get("order_by", "created_ts")
        media = list(queries.user_media(user, order_by, backwards)[start : start + limit])
        with transaction.atomic():
            self.audit(request, "media.delete_user", user.user_id, count=len(media))
        do_delete_media(media)
        return Response({"deleted_media": [m.media_id for m in media], "total": len(media)})


class RoomMediaView(AdminView):
    """GET /_synapse/admin/v1/room/{roomId}/media: the mxc:// URIs its events mention."""

    def get(self, request: Request, room_id: str) -> Response:
        room = room_or_404(room_id)
        uris = sorted(mxc_uris_in_room(room.room_id))
        ours = settings.MATRIXHS_SERVER_NAME
        return Response(
            {
                "local": [f"mxc://{s}/{m}" for s, m in uris if s == ours],
                "remote": [f"mxc://{s}/{m}" for s, m in uris if s != ours],
            }
        )


class QuarantineRoomMediaView(AdminView):
    """POST /_synapse/admin/v1/room/{roomId}/media/quarantine."""

    def post(self, request: Request, room_id: str) -> Response:
        room = room_or_404(room_id)
        with transaction.atomic():
            count = do_quarantine_media(media_in_room(room.room_id), request.requester.user_id)
            self.audit(request, "media.quarantine_room", room.room_id, count=count)
        return Response({"num_quarantined": count})


class QuarantineUserMediaView(AdminView):
    """POST /_synapse/admin/v1/user/{userId}/media/quarantine."""

    def post(self, request: Request, user_id: str) -> Response:
        user = get_local_user_or_404(user_id)
        with transaction.atomic():
            count = do_quarantine_media(media_of_user(user.user_id), request.requester.user_id)
            self.audit(request, "media.quarantine_user", user.user_id, count=count)
        return Response({"num_quarantined": count})
