"""URL routing: /_matrix/..., /.well-known/matrix/..., /_synapse/admin/... and the
operators' /admin/."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path

from accounts.urls import client_patterns as accounts_client
from accounts.urls import client_v1_patterns as accounts_client_v1
from accounts.urls import synapse_admin_v1_patterns as accounts_synapse_admin_v1
from e2ee.urls import client_patterns as e2ee_client
from e2ee.urls import client_unstable_patterns as e2ee_client_unstable
from federation.urls import key_patterns as federation_keys
from federation.urls import v1_patterns as federation_v1
from federation.urls import v2_patterns as federation_v2
from matrixhs import views
from media.urls import client_v1_patterns as media_client_v1
from media.urls import federation_v1_patterns as media_federation_v1
from media.urls import media_v1_patterns, media_v3_patterns
from push.urls import client_patterns as push_client
from rooms.urls import client_patterns as rooms_client
from rooms.urls import client_unstable_patterns as rooms_client_unstable
from rooms.urls import client_v1_patterns as rooms_client_v1
from serveradmin.urls import client_patterns as serveradmin_client
from serveradmin.urls import client_v1_patterns as serveradmin_client_v1
from serveradmin.urls import synapse_admin_v1_patterns as serveradmin_v1
from serveradmin.urls import synapse_admin_v2_patterns as serveradmin_v2
from sync.urls import client_patterns as sync_client
from sync.urls import client_startup_patterns as sync_client_startup

client_v3 = [
    path("capabilities", views.CapabilitiesView.as_view()),
    *accounts_client,
    *rooms_client,
    *e2ee_client,
    *sync_client,
    *sync_client_startup,
    *push_client,
    *serveradmin_client,
]

urlpatterns = [
    path("_matrix/client/versions", views.VersionsView.as_view()),
    re_path(r"^_matrix/client/(?:v3|r0)/", include(client_v3)),
    path(
        "_matrix/client/v1/",
        include([*accounts_client_v1, *rooms_client_v1, *media_client_v1, *serveradmin_client_v1]),
    ),
    re_path(r"^_matrix/media/(?:v3|r0)/", include(media_v3_patterns)),
    path("_matrix/media/v1/", include(media_v1_patterns)),
    path("_matrix/federation/v1/", include([*federation_v1, *media_federation_v1])),
    path("_matrix/federation/v2/", include(federation_v2)),
    path("_matrix/key/v2/", include(federation_keys)),
    path("_matrix/client/unstable/", include([*e2ee_client_unstable, *rooms_client_unstable])),
    path("_synapse/admin/v1/", include([*accounts_synapse_admin_v1, *serveradmin_v1])),
    path("_synapse/admin/v2/", include(serveradmin_v2)),
    path(".well-known/matrix/client", views.WellKnownClientView.as_view()),
    path(".well-known/matrix/server", views.WellKnownServerView.as_view()),
    path(".well-known/matrix/support", views.WellKnownSupportView.as_view()),
    path("admin/", admin.site.urls),
    path("health", views.health),
]

handler400 = "matrixhs.views.handler400"
handler403 = "matrixhs.views.handler403"
handler404 = "matrixhs.views.handler404"
handler500 = "matrixhs.views.handler500"
