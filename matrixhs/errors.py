"""Matrix errors: one exception type and one renderer (spec "Standard error response").

Every error a client or a remote server sees is ``{"errcode": "M_...", "error": "..."}``
with the spec's HTTP status, raised as a :class:`MatrixError` and turned into a
response by :func:`render_error`, whatever raised it (a view, DRF, the URL resolver,
the ASGI body limit or the sync consumer).
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

import psycopg
from django.db import DatabaseError as DjangoDatabaseError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from matrixhs import outages
from matrixhs.outages import database_unreachable

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]


class Codes(StrEnum):
    FORBIDDEN = "M_FORBIDDEN"
    UNKNOWN_TOKEN = "M_UNKNOWN_TOKEN"
    MISSING_TOKEN = "M_MISSING_TOKEN"
    USER_LOCKED = "M_USER_LOCKED"
    USER_SUSPENDED = "M_USER_SUSPENDED"
    BAD_JSON = "M_BAD_JSON"
    NOT_JSON = "M_NOT_JSON"
    NOT_FOUND = "M_NOT_FOUND"
    LIMIT_EXCEEDED = "M_LIMIT_EXCEEDED"
    UNRECOGNIZED = "M_UNRECOGNIZED"
    UNKNOWN = "M_UNKNOWN"
    UNAUTHORIZED = "M_UNAUTHORIZED"
    USER_DEACTIVATED = "M_USER_DEACTIVATED"
    USER_IN_USE = "M_USER_IN_USE"
    INVALID_USERNAME = "M_INVALID_USERNAME"
    ROOM_IN_USE = "M_ROOM_IN_USE"
    INVALID_ROOM_STATE = "M_INVALID_ROOM_STATE"
    THREEPID_IN_USE = "M_THREEPID_IN_USE"
    THREEPID_NOT_FOUND = "M_THREEPID_NOT_FOUND"
    THREEPID_DENIED = "M_THREEPID_DENIED"
    THREEPID_AUTH_FAILED = "M_THREEPID_AUTH_FAILED"
    SERVER_NOT_TRUSTED = "M_SERVER_NOT_TRUSTED"
    UNSUPPORTED_ROOM_VERSION = "M_UNSUPPORTED_ROOM_VERSION"
    INCOMPATIBLE_ROOM_VERSION = "M_INCOMPATIBLE_ROOM_VERSION"
    BAD_STATE = "M_BAD_STATE"
    GUEST_ACCESS_FORBIDDEN = "M_GUEST_ACCESS_FORBIDDEN"
    CAPTCHA_NEEDED = "M_CAPTCHA_NEEDED"
    CAPTCHA_INVALID = "M_CAPTCHA_INVALID"
    MISSING_PARAM = "M_MISSING_PARAM"
    INVALID_PARAM = "M_INVALID_PARAM"
    TOO_LARGE = "M_TOO_LARGE"
    EXCLUSIVE = "M_EXCLUSIVE"
    RESOURCE_LIMIT_EXCEEDED = "M_RESOURCE_LIMIT_EXCEEDED"
    CANNOT_LEAVE_SERVER_NOTICE_ROOM = "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM"
    WEAK_PASSWORD = "M_WEAK_PASSWORD"
    WRONG_ROOM_KEYS_VERSION = "M_WRONG_ROOM_KEYS_VERSION"
    NOT_YET_UPLOADED = "M_NOT_YET_UPLOADED"
    CANNOT_OVERWRITE_MEDIA = "M_CANNOT_OVERWRITE_MEDIA"
    UNKNOWN_POS = "M_UNKNOWN_POS"
    INVALID_SIGNATURE = "M_INVALID_SIGNATURE"
    BAD_ALIAS = "M_BAD_ALIAS"
    DUPLICATE_ANNOTATION = "M_DUPLICATE_ANNOTATION"
    KEY_TOO_LARGE = "M_KEY_TOO_LARGE"
    PROFILE_TOO_LARGE = "M_PROFILE_TOO_LARGE"


class MatrixError(Exception):
    """An error with a Matrix errcode and an HTTP status.

    Args:
        status: the HTTP status code.
        errcode: the Matrix error code.
        msg: a human-readable message.
        extra: more top-level fields of the error body (``retry_after_ms``, ``soft_logout``).
        headers: more response headers (``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        errcode: str,
        msg: str,
        extra: JsonDict | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.errcode = errcode
        self.msg = msg
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> JsonDict:
        return {"errcode": self.errcode, "error": self.msg, **self.extra}


class Forbidden(MatrixError):
    def __init__(self, msg: str = "Forbidden", errcode: str = Codes.FORBIDDEN) -> None:
        super().__init__(403, errcode, msg)


class NotFound(MatrixError):
    def __init__(self, msg: str = "Not found", errcode: str = Codes.NOT_FOUND) -> None:
        super().__init__(404, errcode, msg)


class MissingToken(MatrixError):
    def __init__(self, msg: str = "Missing access token") -> None:
        super().__init__(401, Codes.MISSING_TOKEN, msg)


class UnknownToken(MatrixError):
    def __init__(self, msg: str = "Unknown access token", soft_logout: bool = False) -> None:
        super().__init__(401, Codes.UNKNOWN_TOKEN, msg, {"soft_logout": soft_logout})


class UserLocked(MatrixError):
    """The account is locked (spec "Account locking"): a soft logout, the session stays."""

    def __init__(self) -> None:
        msg = "This account has been locked"
        super().__init__(401, Codes.USER_LOCKED, msg, {"soft_logout": True})


class UserSuspended(MatrixError):
    def __init__(self) -> None:
        super().__init__(403, Codes.USER_SUSPENDED, "This account has been suspended")


class LimitExceeded(MatrixError):
    def __init__(self, retry_after_ms: int) -> None:
        seconds = max(1, -(-retry_after_ms // 1000))
        super().__init__(
            429,
            Codes.LIMIT_EXCEEDED,
            "Too many requests",
            {"retry_after_ms": retry_after_ms},
            {"Retry-After": str(seconds)},
        )


class BadJson(MatrixError):
    def __init__(self, msg: str) -> None:
        super().__init__(400, Codes.BAD_JSON, msg)


class NotJson(MatrixError):
    def __init__(self, msg: str = "Content not JSON.") -> None:
        super().__init__(400, Codes.NOT_JSON, msg)


class MissingParam(MatrixError):
    def __init__(self, msg: str) -> None:
        super().__init__(400, Codes.MISSING_PARAM, msg)


class InvalidParam(MatrixError):
    def __init__(self, msg: str) -> None:
        super().__init__(400, Codes.INVALID_PARAM, msg)


class TooLarge(MatrixError):
    def __init__(self, msg: str = "Request too large") -> None:
        super().__init__(413, Codes.TOO_LARGE, msg)


class Unrecognized(MatrixError):
    def __init__(self, msg: str = "Unrecognized request", status: int = 404) -> None:
        super().__init__(status, Codes.UNRECOGNIZED, msg)


class ServiceUnavailable(MatrixError):
    """503: a service the server needs (the database) is down; try again shortly."""

    def __init__(self, msg: str = "The server is temporarily unavailable", retry_s: int = 2):
        super().__init__(503, Codes.UNKNOWN, msg, headers={"Retry-After": str(retry_s)})


INTERNAL_ERROR_BODY: JsonDict = {"errcode": Codes.UNKNOWN.value, "error": "Internal server error"}


def render_error(exc: BaseException) -> tuple[int, JsonDict, dict[str, str]]:
    """The one place that turns an exception into (status, JSON body, headers)."""
    if isinstance(exc, MatrixError):
        return exc.status, exc.body(), exc.headers
    if isinstance(exc, drf_exceptions.APIException):
        return render_error(_from_drf(exc))
    if isinstance(exc, Http404):
        return render_error(NotFound())
    if isinstance(exc, (DjangoDatabaseError, psycopg.Error)) and database_unreachable(exc):
        if not outages.pool_busy(exc):
            outages.database.failed(exc)  # logged once per outage, not once per request
        return render_error(ServiceUnavailable("The database is temporarily unavailable"))
    logger.error("Unhandled exception", exc_info=exc)
    return 500, dict(INTERNAL_ERROR_BODY), {}


def _from_drf(exc: drf_exceptions.APIException) -> MatrixError:
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return Unrecognized("Method not allowed", status=405)
    if isinstance(exc, drf_exceptions.NotFound):
        return NotFound()
    if isinstance(exc, drf_exceptions.Throttled):
        return LimitExceeded(int((exc.wait or 1) * 1000))
    if isinstance(exc, drf_exceptions.NotAuthenticated):
        return MissingToken()
    if isinstance(exc, drf_exceptions.AuthenticationFailed):
        return UnknownToken()
    if isinstance(exc, drf_exceptions.PermissionDenied):
        return Forbidden(str(exc.detail))
    if isinstance(exc, drf_exceptions.ParseError):
        return NotJson()
    return MatrixError(exc.status_code, Codes.UNKNOWN, str(exc.detail))


def drf_exception_handler(exc: Exception, context: JsonDict) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every exception raised in an APIView goes through here."""
    if not isinstance(exc, (MatrixError, drf_exceptions.APIException, Http404)) and not (
        isinstance(exc, DjangoDatabaseError) and database_unreachable(exc)
    ):
        return None  # let the middleware log it and answer 500 M_UNKNOWN
    status, body, headers = render_error(exc)
    return Response(body, status=status, headers=headers)
