"""The operators' admin site: Django's, with its login attempts rate-limited.

Its pages get clickjacking and content-type protection from the middleware that
matrixhs.middleware.AdminOnlyMiddleware runs for /admin/, and secure cookies from the
settings when the server is reached over HTTPS.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from matrixhs import ratelimit


class MatrixAdminSite(admin.AdminSite):
    site_header = "matrixhs administration"
    site_title = "matrixhs admin"

    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Each password attempt counts in the "auth" bucket of its IP, as /login does.

        Raises:
            LimitExceeded: too many attempts from this address (429, Retry-After).
        """
        if request.method == "POST":
            ratelimit.check("auth", request, None)
        return super().login(request, extra_context)
