"""The one middleware in front of every view: CORS, OPTIONS, and MatrixError rendering.

It is both sync- and async-capable, so it never forces a thread hop on an async view.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse

from matrixhs.errors import MatrixError, render_error
from matrixhs.observe import note_endpoint
from matrixhs.outages import database_unreachable

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization, Date",
    "Access-Control-Expose-Headers": "Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining",
}


def add_cors(response: HttpResponse) -> HttpResponse:
    for name, value in CORS_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _is_api(path: str) -> bool:
    return path.startswith(("/_matrix/", "/.well-known/matrix/", "/_synapse/"))


def error_response(exc: BaseException) -> JsonResponse:
    status, body, headers = render_error(exc)
    return add_cors(JsonResponse(body, status=status, headers=headers))  # type: ignore[return-value]


class MatrixMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        if request.method == "OPTIONS" and _is_api(request.path):
            return add_cors(JsonResponse({}))
        return self._finish(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        if request.method == "OPTIONS" and _is_api(request.path):
            return add_cors(JsonResponse({}))
        get_response: Callable[[HttpRequest], Awaitable[HttpResponse]] = self.get_response
        return self._finish(request, await get_response(request))

    def _finish(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        match = request.resolver_match
        if match is not None:
            note_endpoint(match.route.lstrip("^").rstrip("$"))
        return add_cors(response) if _is_api(request.path) else response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Plain (non-DRF) views raise MatrixError too; render it here."""
        if isinstance(exception, MatrixError) or (
            isinstance(exception, DatabaseError) and database_unreachable(exception)
        ):
            return error_response(exception)
        return None


class AdminOnlyMiddleware:
    """Security headers, sessions, auth and messages, for the Django admin only.

    Django's stock middleware run their hooks through sync_to_async under ASGI: a thread
    hop each. The Matrix API needs none of them (it authenticates by access token, and
    answers JSON only), so they wrap only requests under /admin/: the admin's pages are
    never framed (X-Frame-Options: DENY, against clickjacking) and get Django's
    SecurityMiddleware headers (nosniff, Referrer-Policy, Cross-Origin-Opener-Policy).
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        from django.contrib.auth.middleware import AuthenticationMiddleware
        from django.contrib.messages.middleware import MessageMiddleware
        from django.contrib.sessions.middleware import SessionMiddleware
        from django.middleware.clickjacking import XFrameOptionsMiddleware
        from django.middleware.security import SecurityMiddleware

        self.get_response = get_response
        self.admin_chain = SecurityMiddleware(
            XFrameOptionsMiddleware(
                SessionMiddleware(AuthenticationMiddleware(MessageMiddleware(get_response)))
            )
        )
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if request.path.startswith("/admin/"):
            return self.admin_chain(request)
        return self.get_response(request)
