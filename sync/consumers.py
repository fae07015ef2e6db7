"""The /sync long-poll, as a plain ASGI application routed before Django (matrixhs/asgi.py).

It answers as soon as there is something new, or when ``timeout`` runs out, holding
neither a thread nor a database connection while it waits: each read borrows a request
thread (matrixhs.asgi_handler) and gives it back. It is not a Channels AsyncHttpConsumer:
those read the next ASGI message only after ``handle`` returns, so they cannot notice a
client that went away during the wait (channels#1249); this one listens for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from matrixhs import ratelimit
from matrixhs.asgi_handler import request_threads
from matrixhs.auth import authenticate
from matrixhs.errors import InvalidParam, Unrecognized, render_error
from matrixhs.fastjson import dumps
from matrixhs.http import check_parameters, parse_json_bytes
from matrixhs.middleware import CORS_HEADERS
from matrixhs.notifier import WakeUps
from matrixhs.observe import note_endpoint
from matrixhs.tokens import parse_position
from sync.classic import SyncRequest, sync_for_user
from sync.params import parse_sync_request
from sync.presence import do_mark_active
from sync.sliding import SlidingRequest, parse_request, sliding_sync

logger = logging.getLogger(__name__)

MAX_TIMEOUT_MS = 120_000
#: Long-poll reads running at once in a process.
COMPUTE_SLOTS = 4
_slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


def _compute_slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _slots:
        _slots.clear()  # one server loop per process (tests make a loop per test)
        _slots[loop] = asyncio.Semaphore(COMPUTE_SLOTS)
    return _slots[loop]


Send = Callable[[dict[str, Any]], Awaitable[None]]


async def send_json(
    send: Send, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    payload = dumps(body)
    all_headers = {"Content-Type": "application/json", **CORS_HEADERS, **(headers or {})}
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class LongPollRequest:
    """What a long-poll endpoint needs from the ASGI scope."""

    def __init__(self, scope: dict[str, Any], body: bytes) -> None:
        self.method = scope["method"]
        query_string = scope.get("query_string", b"").decode("utf-8", "replace")
        self.query = {k: v[-1] for k, v in parse_qs(query_string).items()}
        # Header bytes are Latin-1 (RFC 9110 5.5), as Django reads them: any byte decodes.
        self.headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        self.client = (scope.get("client") or ("unknown", 0))[0]
        self.body = body

    @property
    def META(self) -> dict[str, str]:
        meta = {"REMOTE_ADDR": self.client}
        for name, value in self.headers.items():
            meta["HTTP_" + name.upper().replace("-", "_")] = value
        return meta

    @property
    def GET(self) -> dict[str, str]:
        return self.query

    def timeout_ms(self) -> int:
        """Raises: InvalidParam: not a non-negative integer."""
        timeout = parse_position(self.query.get("timeout", "0"))
        if timeout is None:
            raise InvalidParam("timeout must be a non-negative integer")
        return min(timeout, MAX_TIMEOUT_MS)


Compute = Callable[[LongPollRequest, Any], Any]


class LongPollEndpoint:
    """Authenticate, read, and if the answer is empty wait for a wake-up and read again.

    Subclasses give ``methods``, ``prepare`` (authenticate and parse the request, on a
    request thread), ``compute`` (build the answer: ``(status, body, has_changes,
    wake_at_ms)``, on a request thread) and optionally ``user_of``.

    Each request counts once in the "sync" rate-limit bucket of its user. Every read
    after a wait checks the access token again: a logout or a deactivation wakes the
    user's waiting requests (accounts.actions), which then answer 401 M_UNKNOWN_TOKEN
    instead of serving the ended session until their timeout.
    """

    methods: tuple[str, ...] = ("GET",)
    #: The endpoint's name in the metrics.
    endpoint = "sync"

    def prepare(self, request: LongPollRequest) -> Any:
        raise NotImplementedError

    def compute(self, request: LongPollRequest, prepared: Any) -> tuple[int, Any, bool, int | None]:
        raise NotImplementedError

    def user_of(self, prepared: Any) -> str:
        return str(prepared.user.user_id)

    def timeout_ms(self, request: LongPollRequest) -> int:
        return request.timeout_ms()

    def _prepare(self, request: LongPollRequest) -> Any:
        check_parameters({}, request.query)
        prepared = self.prepare(request)
        ratelimit.check("sync", request, self.user_of(prepared))
        return prepared

    def _prepare_and_compute(self, request: LongPollRequest) -> tuple[int, Any, bool, int | None]:
        return self.compute(request, self._prepare(request))

    def _recheck_and_compute(
        self, request: LongPollRequest, prepared: Any
    ) -> tuple[int, Any, bool, int | None]:
        """A read after a wait: the session may have ended meanwhile.

        Raises:
            UnknownToken: the token was revoked, or its user deactivated, or it expired.
        """
        authenticate(request, required=True)
        return self.compute(request, prepared)

    async def _run(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run a read on a request thread, at most COMPUTE_SLOTS at a time per process: when
        a message wakes a hundred waiting syncs, they take turns instead of all fighting
        for the interpreter (and the writer that woke them gets a thread at once)."""
        async with _compute_slots():
            return await request_threads.run(func, *args)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            return
        note_endpoint(self.endpoint)
        body = await _read_body(receive)
        if body is None:
            return
        request = LongPollRequest(scope, body)
        if request.method == "OPTIONS":
            await send_json(send, 200, {})
            return
        disconnected = asyncio.ensure_future(receive())
        try:
            status, answer = await self._answer(request, disconnected)
        except Exception as exc:  # MatrixError, or 500 M_UNKNOWN (logged by render_error)
            status, answer, headers = render_error(exc)
            await send_json(send, status, answer, headers)
            return
        finally:
            disconnected.cancel()
        if status:  # 0: the client went away
            await send_json(send, status, answer)

    async def _answer(
        self, request: LongPollRequest, disconnected: asyncio.Future[Any]
    ) -> tuple[int, Any]:
        if request.method not in self.methods:
            raise Unrecognized("Method not allowed", status=405)
        timeout_ms = self.timeout_ms(request)
        if timeout_ms == 0:  # no wait: check and read in one trip to a thread
            status, body, _, _ = await self._run(self._prepare_and_compute, request)
            return status, body
        prepared = await self._run(self._prepare, request)
        deadline = time.monotonic() + timeout_ms / 1000
        async with WakeUps(self.user_of(prepared)) as wake_ups:
            read = self.compute
            while True:
                status, body, changed, wake_at_ms = await self._run(read, request, prepared)
                read = self._recheck_and_compute
                remaining = deadline - time.monotonic()
                if changed or remaining <= 0:
                    return status, body
                if wake_at_ms is not None:
                    remaining = min(remaining, max(0.05, wake_at_ms / 1000 - time.time()))
                waiter = asyncio.ensure_future(wake_ups.wait(remaining))
                done, _ = await asyncio.wait(
                    {waiter, disconnected}, return_when=asyncio.FIRST_COMPLETED
                )
                if disconnected in done:
                    waiter.cancel()
                    return 0, None


async def _read_body(receive: Any) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


class SyncLongPollConsumer(LongPollEndpoint):
    """GET /_matrix/client/v3/sync (and r0)."""

    def prepare(self, request: LongPollRequest) -> SyncRequest:
        return parse_sync_request(request)

    def compute(
        self, request: LongPollRequest, prepared: SyncRequest
    ) -> tuple[int, Any, bool, int | None]:
        result = sync_for_user(prepared)
        return 200, result.body, result.has_changes, result.next_typing_expiry_ms


class SlidingSyncConsumer(LongPollEndpoint):
    """POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync (MSC4186)."""

    methods = ("POST",)
    endpoint = "sliding_sync"

    def timeout_ms(self, request: LongPollRequest) -> int:
        return request.timeout_ms() if "pos" in request.query else 0  # no pos: never wait

    def prepare(self, request: LongPollRequest) -> SlidingRequest:
        requester = authenticate(request, required=True)
        body = parse_json_bytes(request.body)
        do_mark_active(requester.user, request.query.get("set_presence", "online"))
        return parse_request(requester.user, requester.device_id, request.query, body)

    def compute(
        self, request: LongPollRequest, prepared: SlidingRequest
    ) -> tuple[int, Any, bool, int | None]:
        body, news, wake_at = sliding_sync(prepared)
        return 200, body, news, wake_at
