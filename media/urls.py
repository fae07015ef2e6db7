"""Routes of the media repository (mounted by matrixhs/urls.py)."""

from __future__ import annotations

from django.urls import path, re_path

from media import views

MXC = "<str:server_name>/<str:media_id>"

# /_matrix/client/v1/media/...: the authenticated endpoints (spec 1.11).
client_v1_patterns = [
    path("media/config", views.ConfigView.as_view()),
    path(f"media/download/{MXC}", views.DownloadView.as_view()),
    path(f"media/download/{MXC}/<str:file_name>", views.DownloadView.as_view()),
    path(f"media/thumbnail/{MXC}", views.ThumbnailView.as_view()),
    path("media/preview_url", views.PreviewUrlView.as_view()),
    re_path(r"^media/(?:download|thumbnail)/(?P<rest>.+)$", views.UnknownMediaView.as_view()),
]

# /_matrix/media/v3/... (and r0): uploads, and the deprecated unauthenticated endpoints.
media_v3_patterns = [
    path("upload", views.UploadView.as_view()),
    path(f"upload/{MXC}", views.UploadPendingView.as_view()),
    path("config", views.ConfigView.as_view()),
    path(f"download/{MXC}", views.LegacyDownloadView.as_view()),
    path(f"download/{MXC}/<str:file_name>", views.LegacyDownloadView.as_view()),
    path(f"thumbnail/{MXC}", views.LegacyThumbnailView.as_view()),
    path("preview_url", views.PreviewUrlView.as_view()),
]

# /_matrix/media/v1/...
media_v1_patterns = [path("create", views.CreateView.as_view())]

# /_matrix/federation/v1/media/...
federation_v1_patterns = [
    path("media/download/<str:media_id>", views.FederationMediaDownloadView.as_view()),
    path("media/thumbnail/<str:media_id>", views.FederationThumbnailView.as_view()),
]

#: Paths whose request bodies may be as large as MATRIXHS_MAX_UPLOAD_BYTES (asgi.py).
UPLOAD_PATH_REGEX = r"^/_matrix/media/(?:v3|r0)/upload(?:/[^/]+/[^/]+)?$"
