"""Media repository views: upload, create, config, download, thumbnail, URL preview, and
the federation media endpoints. Views parse, call media.actions / media.queries, and
answer; media bodies stream from storage (media.responses).

An upload's body is never read whole: Django's ASGI handler spools it to a temporary file
past FILE_UPLOAD_MAX_MEMORY_SIZE, and the upload copies it from there to the media
storage in chunks (``request.body`` would load it into memory, and is never touched).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, StreamingHttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from federation.auth import FederationView
from matrixhs.errors import InvalidParam, MissingParam, NotFound
from matrixhs.http import MatrixView, query_bool, query_int
from media import actions, previews, queries, storage
from media.models import Media
from media.responses import disposition, media_response, multipart_response

_DEFAULT_TIMEOUT_MS = 20_000


def _declared_length(request: Request) -> int | None:
    raw = request.META.get("CONTENT_LENGTH") or ""
    return int(raw) if raw.isdigit() else None


def _body(request: Request) -> HttpRequest:
    """The request as the file its body is read from, chunk by chunk."""
    return request._request


def _content_uri(media: Media) -> dict[str, str]:
    return {"content_uri": media.mxc}


class UploadView(MatrixView):
    """POST /_matrix/media/v3/upload."""

    suspended_refused = ("POST",)

    def post(self, request: Request) -> Response:
        media = actions.do_upload(
            request.requester.user,
            _body(request),
            request.META.get("CONTENT_TYPE"),
            request.query_params.get("filename"),
            _declared_length(request),
        )
        return Response(_content_uri(media))


class CreateView(MatrixView):
    """POST /_matrix/media/v1/create."""

    suspended_refused = ("POST",)

    def post(self, request: Request) -> Response:
        media = actions.do_create_media_id(request.requester.user)
        return Response({**_content_uri(media), "unused_expires_at": media.unused_expires_ts})


class UploadPendingView(MatrixView):
    """PUT /_matrix/media/v3/upload/{serverName}/{mediaId}."""

    suspended_refused = ("PUT",)

    def put(self, request: Request, server_name: str, media_id: str) -> Response:
        user = request.requester.user
        media = actions.check_pending_upload(user, server_name, media_id)
        actions.do_upload_pending(
            user,
            media,
            _body(request),
            request.META.get("CONTENT_TYPE"),
            request.query_params.get("filename"),
            _declared_length(request),
        )
        return Response({})


class ConfigView(MatrixView):
    """GET /_matrix/client/v1/media/config (and the deprecated /_matrix/media/v3/config)."""

    def get(self, request: Request) -> Response:
        return Response(queries.media_config())


def _download(media: Media, filename: str | None) -> StreamingHttpResponse:
    actions.do_record_access(media)
    name = filename if filename is not None else media.upload_name
    return media_response(
        storage.open_stream(media.storage_key),
        media.size,
        media.content_type,
        disposition(media.content_type, name),
    )


class DownloadView(MatrixView):
    """GET /_matrix/client/v1/media/download/{serverName}/{mediaId}[/{fileName}].

    ``legacy``: the deprecated, unauthenticated /_matrix/media/v3 endpoint, frozen for
    media created after MATRIXHS_MEDIA_LEGACY_FREEZE_MS.
    """

    legacy = False
    unbounded_path_params = ("file_name",)  # only named in Content-Disposition, never stored

    def get(
        self, request: Request, server_name: str, media_id: str, file_name: str | None = None
    ) -> StreamingHttpResponse:
        timeout_ms = query_int(request, "timeout_ms", _DEFAULT_TIMEOUT_MS)
        media = queries.access_media(
            server_name, media_id, timeout_ms, self.legacy, _allow_remote(request)
        )
        return _download(media, file_name)


class UnknownMediaView(MatrixView):
    """A download or thumbnail path of the authenticated API that names no media (more
    segments than a media ID has, as when a client puts a whole mxc:// URI in it): the
    token is checked as on every authenticated media path, then 404."""

    def get(self, request: Request, rest: str) -> Response:
        raise NotFound("No media at this path")


class LegacyDownloadView(DownloadView):
    requires_auth = False
    legacy = True


def _allow_remote(request: Request) -> bool:
    """The legacy endpoints' ``allow_remote`` (default true): false, nothing is fetched."""
    return request.query_params.get("allow_remote", "true").lower() != "false"


def _thumbnail_params(request: Request) -> tuple[int, int, str, bool]:
    """width, height, method and animated from the query.

    Raises:
        MissingParam: no width or height.
        InvalidParam: not positive integers, or an unknown method.
    """
    for name in ("width", "height"):
        if name not in request.query_params:
            raise MissingParam(f"Missing query parameter: {name}")
    width = query_int(request, "width", 0, minimum=1)
    height = query_int(request, "height", 0, minimum=1)
    method = request.query_params.get("method", "scale")
    if method not in ("crop", "scale"):
        raise InvalidParam("method must be crop or scale")
    return width, height, method, query_bool(request, "animated", False)


def thumbnail_of(
    media: Media, width: int, height: int, method: str, animated: bool, multipart: bool = False
) -> StreamingHttpResponse:
    """The thumbnail response for a media (see actions.do_get_thumbnail)."""
    served = actions.do_get_thumbnail(media, width, height, method, animated)
    respond = multipart_response if multipart else media_response
    return respond(
        storage.open_stream(served.storage_key),
        served.size,
        served.content_type,
        disposition(served.content_type, _thumbnail_name(served.content_type), force_inline=True),
    )


def _thumbnail_name(content_type: str) -> str:
    return "thumbnail." + content_type.split("/")[1]


class ThumbnailView(MatrixView):
    """GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}."""

    legacy = False

    def get(self, request: Request, server_name: str, media_id: str) -> StreamingHttpResponse:
        width, height, method, animated = _thumbnail_params(request)
        timeout_ms = query_int(request, "timeout_ms", _DEFAULT_TIMEOUT_MS)
        media = queries.access_media(
            server_name, media_id, timeout_ms, self.legacy, _allow_remote(request)
        )
        return thumbnail_of(media, width, height, method, animated)


class LegacyThumbnailView(ThumbnailView):
    requires_auth = False
    legacy = True


class PreviewUrlView(MatrixView):
    """GET /_matrix/client/v1/media/preview_url (and the deprecated v3 one)."""

    def get(self, request: Request) -> Response:
        url = request.query_params.get("url")
        if not url:
            raise MissingParam("Missing query parameter: url")
        query_int(request, "ts", 0)  # a preferred time: the newest preview is served
        return Response(previews.preview_url(request.requester.user, url))


# --- Federation ---------------------------------------------------------------------------


class FederationMediaDownloadView(FederationView):
    """GET /_matrix/federation/v1/media/download/{mediaId}: our own media only."""

    def get(self, request: Request, media_id: str) -> StreamingHttpResponse:
        timeout_ms = query_int(request, "timeout_ms", _DEFAULT_TIMEOUT_MS)
        media = queries.access_media(settings.MATRIXHS_SERVER_NAME, media_id, timeout_ms)
        actions.do_record_access(media)
        return multipart_response(
            storage.open_stream(media.storage_key),
            media.size,
            media.content_type,
            disposition(media.content_type, media.upload_name),
        )


class FederationThumbnailView(FederationMediaDownloadView):
    """GET /_matrix/federation/v1/media/thumbnail/{mediaId}."""

    def get(self, request: Request, media_id: str) -> StreamingHttpResponse:
        width, height, method, animated = _thumbnail_params(request)
        timeout_ms = query_int(request, "timeout_ms", _DEFAULT_TIMEOUT_MS)
        media = queries.access_media(settings.MATRIXHS_SERVER_NAME, media_id, timeout_ms)
        return thumbnail_of(media, width, height, method, animated, multipart=True)
