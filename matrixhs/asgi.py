"""The ASGI application: the /sync long-polls, then Django, behind the body limit and the
reverse proxies' client address (matrixhs.asgi_proxies), each request counted, timed and
logged (matrixhs.observe)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "matrixhs.settings")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.urls import re_path

from matrixhs.asgi_handler import get_asgi_application
from matrixhs.asgi_limits import RequestBodyLimit
from matrixhs.asgi_proxies import TrustedProxies
from matrixhs.observe import ObservedApp

django_application = get_asgi_application()

from media.urls import UPLOAD_PATH_REGEX  # noqa: E402  (after the app registry)
from sync.consumers import (  # noqa: E402
    SlidingSyncConsumer,
    SyncLongPollConsumer,
)

http = URLRouter(
    [
        re_path(r"^_matrix/client/(v3|r0)/sync$", SyncLongPollConsumer()),
        re_path(
            r"^_matrix/client/unstable/org\.matrix\.simplified_msc3575/sync$", SlidingSyncConsumer()
        ),
        re_path(r"", ASGIStaticFilesHandler(django_application)),
    ]
)

body_limit = RequestBodyLimit(
    ProtocolTypeRouter({"http": http}),
    limit=settings.MATRIXHS_MAX_REQUEST_BYTES,
    path_limits=[(UPLOAD_PATH_REGEX, settings.MATRIXHS_MAX_UPLOAD_BYTES)],
)
application = ObservedApp(TrustedProxies(body_limit))
