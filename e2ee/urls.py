from __future__ import annotations

from django.urls import path

from e2ee import views

# Served under /_matrix/client/v3/ and, for older clients, /_matrix/client/r0/. Session
# and transaction IDs may hold "/" (percent-encoded by the client), hence <path:...>.
client_patterns = [
    path("keys/upload", views.KeysUploadView.as_view()),
    path("keys/query", views.KeysQueryView.as_view()),
    path("keys/claim", views.KeysClaimView.as_view()),
    path("keys/changes", views.KeysChangesView.as_view()),
    path("keys/device_signing/upload", views.DeviceSigningUploadView.as_view()),
    path("keys/signatures/upload", views.SignaturesUploadView.as_view()),
    path("sendToDevice/<str:event_type>/<path:txn_id>", views.SendToDeviceView.as_view()),
    path("room_keys/version", views.RoomKeysVersionsView.as_view()),
    path("room_keys/version/<str:version>", views.RoomKeysVersionView.as_view()),
    path("room_keys/keys", views.RoomKeysView.as_view()),
    path("room_keys/keys/<str:room_id>", views.RoomKeysView.as_view()),
    path("room_keys/keys/<str:room_id>/<path:session_id>", views.RoomKeysView.as_view()),
]

# Served under /_matrix/client/unstable/: the cross-signing paths from before v1.1, which
# clients (Element among them) still call, and dehydrated devices (MSC3814). A dehydrated
# device's ID is a base64 key, which may hold "/".
client_unstable_patterns = [
    path("keys/device_signing/upload", views.DeviceSigningUploadView.as_view()),
    path("keys/signatures/upload", views.SignaturesUploadView.as_view()),
    path("org.matrix.msc3814.v1/dehydrated_device", views.DehydratedDeviceView.as_view()),
    path(
        "org.matrix.msc3814.v1/dehydrated_device/<path:device_id>/events",
        views.DehydratedDeviceEventsView.as_view(),
    ),
]
