"""Server-wide endpoints: versions, capabilities, .well-known, and the JSON 404/500."""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404
from rest_framework.request import Request
from rest_framework.response import Response

from matrixhs.errors import INTERNAL_ERROR_BODY, JsonDict, NotFound, Unrecognized, render_error
from matrixhs.http import MatrixView
from matrixhs.protocol.room_versions import (
    IMPLEMENTED_ROOM_VERSIONS,
)

#: Room versions we offer: all but those needing state resolution v1 (room version 1).
SERVED_ROOM_VERSIONS = list(IMPLEMENTED_ROOM_VERSIONS.values())

#: The spec versions whose client-server API we serve. A version goes in this list only
#: once what it added is implemented; the README's "Status" names what is still missing.
#: v1.7 (asynchronous uploads), v1.8 (reports by joined members, room version 11), v1.9,
#: v1.10 and v1.11 (authenticated media, which clients switch to by this list) came with
#: the media repository.
SUPPORTED_SPEC_VERSIONS = [
    "v1.1",
    "v1.2",
    "v1.3",
    "v1.4",
    "v1.5",
    "v1.6",
    "v1.7",
    "v1.8",
    "v1.9",
    "v1.10",
    "v1.11",
]


#: Unstable features we implement: simplified sliding sync (MSC4186), for Element X, and
#: dehydrated devices (MSC3814).
UNSTABLE_FEATURES = {"org.matrix.simplified_msc3575": True, "org.matrix.msc3814": True}


class VersionsView(MatrixView):
    requires_auth = False
    rate_limit = None

    def get(self, request: Request) -> Response:
        return Response(
            {"versions": SUPPORTED_SPEC_VERSIONS, "unstable_features": UNSTABLE_FEATURES}
        )


class CapabilitiesView(MatrixView):
    allow_guests = True

    def get(self, request: Request) -> Response:
        enabled = {"enabled": True}
        capabilities: JsonDict = {
            "m.change_password": {"enabled": not request.requester.is_guest},
            "m.room_versions": {
                "default": settings.MATRIXHS_DEFAULT_ROOM_VERSION,
                "available": {
                    rv.identifier: "stable" if rv.stable else "unstable"
                    for rv in SERVED_ROOM_VERSIONS
                },
            },
            "m.set_displayname": enabled,
            "m.set_avatar_url": enabled,
            "m.profile_fields": enabled,
            "m.3pid_changes": {"enabled": False},
            "m.get_login_token": {
                "enabled": settings.MATRIXHS_LOGIN_TOKEN_ENABLED and not request.requester.is_guest
            },
        }
        if request.requester.user.is_admin:
            # Server admins may lock and suspend users (/_matrix/client/v1/admin/...); the
            # spec says to leave the capability out for everyone else.
            capabilities["m.account_moderation"] = {"suspend": True, "lock": True}
        return Response({"capabilities": capabilities})


class WellKnownClientView(MatrixView):
    requires_auth = False
    rate_limit = None

    def get(self, request: Request) -> Response:
        return Response({"m.homeserver": {"base_url": settings.MATRIXHS_PUBLIC_BASEURL}})


class WellKnownSupportView(MatrixView):
    """GET /.well-known/matrix/support: the operators' contacts, when configured."""

    requires_auth = False
    rate_limit = None

    def get(self, request: Request) -> Response:
        contacts = []
        if settings.MATRIXHS_SUPPORT_MXID or settings.MATRIXHS_SUPPORT_EMAIL:
            contact = {"role": "m.role.admin"}
            if settings.MATRIXHS_SUPPORT_MXID:
                contact["matrix_id"] = settings.MATRIXHS_SUPPORT_MXID
            if settings.MATRIXHS_SUPPORT_EMAIL:
                contact["email_address"] = settings.MATRIXHS_SUPPORT_EMAIL
            contacts.append(contact)
        body: dict[str, object] = {"contacts": contacts} if contacts else {}
        if settings.MATRIXHS_SUPPORT_PAGE:
            body["support_page"] = settings.MATRIXHS_SUPPORT_PAGE
        if not body:
            raise NotFound("No support information is configured")
        return Response(body)


class WellKnownServerView(MatrixView):
    requires_auth = False
    rate_limit = None

    def get(self, request: Request) -> Response:
        if not settings.MATRIXHS_FEDERATION_ENABLED:
            raise NotFound("This server does not federate")
        return Response({"m.server": settings.MATRIXHS_FEDERATION_ADDRESS})


def _json(exc: Exception) -> JsonResponse:
    status, body, headers = render_error(exc)
    return JsonResponse(body, status=status, headers=headers)


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """No route: 404 M_UNRECOGNIZED; a view's Http404: 404 M_NOT_FOUND."""
    if exception is None or isinstance(exception, Resolver404):
        return _json(Unrecognized())
    return _json(NotFound())


def health(request: HttpRequest) -> HttpResponse:
    """GET /health, for load balancers: 200 "OK" when the database answers, else 503."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return HttpResponse("Unavailable\n", status=503, content_type="text/plain")
    return HttpResponse("OK", content_type="text/plain")


def handler500(request: HttpRequest) -> JsonResponse:
    return JsonResponse(INTERNAL_ERROR_BODY, status=500)


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"errcode": "M_UNKNOWN", "error": "Bad request"}, status=400)


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"errcode": "M_FORBIDDEN", "error": "Forbidden"}, status=403)
