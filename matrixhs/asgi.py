"""The ASGI application: Django behind the body limit (Channels routes come with /sync)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "matrixhs.settings")

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from matrixhs.asgi_handler import get_asgi_application  # noqa: E402
from matrixhs.asgi_limits import RequestBodyLimit  # noqa: E402

django_application = get_asgi_application()

application = RequestBodyLimit(
    ProtocolTypeRouter({"http": ASGIStaticFilesHandler(django_application)}),
    limit=settings.MATRIXHS_MAX_REQUEST_BYTES,
)
