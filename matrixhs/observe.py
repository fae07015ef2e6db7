"""What every HTTP request leaves behind: a metric sample and an access-log line.

:class:`ObservedApp` wraps the whole ASGI application. Inner layers say what they learnt
about the request through :func:`note_endpoint` (the URL pattern that matched: metrics
are labelled by pattern, never by raw path) and :func:`note_user` (who authenticated);
both write to one small object found through a context variable, which Django's and
the long-polls' worker threads share with the request's task.

The access log is one line per request, on the ``matrixhs.access`` logger: method, path
(with secrets in the query string masked), status, duration in milliseconds and user.
It never holds a request or response body, a header, or a token.
"""

from __future__ import annotations

import contextvars
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, quote

from django.conf import settings
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from matrixhs import metrics

access_logger = logging.getLogger("matrixhs.access")

#: Query parameters whose values never reach a log line.
SECRET_PARAMS = frozenset(
    {"access_token", "token", "login_token", "refresh_token", "password", "client_secret",
     "sid", "sig", "signature", "key", "secret", "code", "state"}
)  # fmt: skip


class RequestInfo:
    __slots__ = ("endpoint", "user")

    def __init__(self) -> None:
        self.endpoint: str | None = None
        self.user: str | None = None


_current: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "matrixhs_request_info", default=None
)


def note_endpoint(endpoint: str | None) -> None:
    """The URL pattern (or a fixed name) of the request being answered."""
    info = _current.get()
    if info is not None and endpoint:
        info.endpoint = endpoint


def note_user(user_id: str) -> None:
    """The user the request's access token belongs to."""
    info = _current.get()
    if info is not None:
        info.user = user_id


def safe_path(path: str, query_string: bytes) -> str:
    """``path?query`` with the values of secret parameters masked."""
    if not query_string:
        return path
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    query = "&".join(
        f"{quote(k, safe='')}={'<redacted>' if k.lower() in SECRET_PARAMS else quote(v, safe='')}"
        for k, v in pairs
    )
    return f"{path}?{query}"


#: Labelled children of the request metrics, made once (``labels()`` costs a lock and a
#: lookup on every call).
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def record(endpoint: str, method: str, status: int, seconds: float) -> None:
    key = (endpoint, method, status)
    children = _children.get(key)
    if children is None:
        children = (
            metrics.HTTP_REQUESTS.labels(endpoint, method, str(status)),
            metrics.HTTP_LATENCY.labels(endpoint),
        )
        _children[key] = children
    children[0].inc()
    children[1].observe(seconds)


Send = Callable[[dict[str, Any]], Awaitable[None]]


class ObservedApp:
    """Counts, times and logs each HTTP request; serves /metrics when a token is set."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = settings.MATRIXHS_METRICS_TOKEN
        if token and scope["path"] == "/metrics":
            await self._metrics(scope, send, token)
            return
        info = RequestInfo()
        reset = _current.set(info)
        started = time.perf_counter()
        status = 0

        async def observed_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            _current.reset(reset)
            seconds = time.perf_counter() - started
            method = scope.get("method", "")
            record(info.endpoint or "unmatched", method, status, seconds)
            if settings.MATRIXHS_ACCESS_LOG:
                _log_access(scope, method, status, seconds, info.user)

    async def _metrics(self, scope: dict[str, Any], send: Send, token: str) -> None:
        """/metrics on the main listener, for a bearer of MATRIXHS_METRICS_TOKEN."""
        from matrixhs.asgi_handler import request_threads

        given = b""
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
        if not hmac.compare_digest(given, token.encode()):
            body, status, content_type = b"Unauthorized\n", 401, b"text/plain"
        else:
            # Collectors read the database: on a request thread, as Django code does.
            body = await request_threads.run(generate_latest, REGISTRY)
            status, content_type = 200, CONTENT_TYPE_LATEST.encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type)],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _log_access(
    scope: dict[str, Any], method: str, status: int, seconds: float, user: str | None
) -> None:
    path = safe_path(scope.get("path", ""), scope.get("query_string", b""))
    ms = round(seconds * 1000, 1)
    access_logger.info(
        "%s %s %s %.1fms %s",
        method,
        path,
        status,
        ms,
        user or "-",
        extra={"method": method, "path": path, "status": status, "duration_ms": ms,
               "user": user},
    )  # fmt: skip


class JsonFormatter(logging.Formatter):
    """MATRIXHS_LOG_FORMAT=json: one JSON object per line; access-log lines carry their
    fields (method, path, status, duration_ms, user) as keys of their own."""

    FIELDS = ("method", "path", "status", "duration_ms", "user")
    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in self.FIELDS:
            if field in record.__dict__:
                entry[field] = record.__dict__[field]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
