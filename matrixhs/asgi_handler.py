"""Django's ASGI handler, with the request threads kept instead of made anew, and capped.

Stock Django runs every request in a fresh ``ThreadSensitiveContext``: the request's
sync code (views, ORM) runs on a thread created for that request and joined afterwards,
which costs more than a cheap request itself. Here each request borrows a single-thread
executor from a pool and gives it back: sync code still runs on one thread per request,
as Django requires, but threads (and, on SQLite, their database connections) live on.

At most MATRIXHS_REQUEST_THREADS requests hold a thread at once; the others wait their
turn, in order, holding nothing but their coroutine. Without a cap a burst of N
concurrent requests made N threads, each with its stack, its database connection and
whatever its request allocated (an Argon2 hash is 19 MiB), and kept them all.

Nothing waits for a client while holding a thread: the request body is read before a
thread is borrowed, and the long-poll consumers borrow one for each database read only,
never while they wait. A task never borrows twice (a nested ``lend`` in the same task
reuses its thread), so requests cannot deadlock on the cap.

A request crosses to its thread once. Stock Django's async handler crosses four times for
a sync view (the request_started receivers, the view, the response's close with the
request_finished receivers, each a hop to the thread and back, each costing more than a
cheap view); here the whole of Django's sync handling (signals, middleware, view, close)
runs in one call on the borrowed thread and the event loop only sends the bytes. A
streaming response (a media download) is iterated as Django's async handler does.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import IO, Any, TypeAlias, TypeVar

import django
from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import close_old_connections
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

T = TypeVar("T")

#: The task that holds a request thread, while it does. A task started from inside a lend
#: inherits this value (uvicorn starts a pipelined request's task from within the
#: previous request's send, for one), so a lend is reused only by the task that took it.
_lent: contextvars.ContextVar[tuple[asyncio.Task[Any], ThreadPoolExecutor] | None] = (
    contextvars.ContextVar("request_thread_lent", default=None)
)


class RequestThreads:
    """A capped pool of single-thread executors lent to one request (or read) at a time."""

    def __init__(self) -> None:
        self._idle: list[ThreadPoolExecutor] = []
        self._created = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None

    @property
    def created(self) -> int:
        """Threads made so far (at most the largest cap in force since start)."""
        return self._created

    def _bind(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        if loop is not self._loop or self._slots is None:
            from matrixhs.notifier import bind_server_loop  # the app registry is ready now

            bind_server_loop(loop)
            self._loop = loop
            # One server loop per process; tests make a loop per test (and may change
            # the setting between them).
            self._slots = asyncio.Semaphore(settings.MATRIXHS_REQUEST_THREADS)
        return self._slots

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[ThreadPoolExecutor]:
        """Run the block's thread-sensitive sync code on one borrowed thread, waiting for
        one to be free if all are lent; the block gets that thread's executor."""
        task = asyncio.current_task()
        lent = _lent.get()
        if task is not None and lent is not None and lent[0] is task:
            yield lent[1]  # already on a borrowed thread: keep it
            return
        async with self._bind(asyncio.get_running_loop()):
            if self._idle:
                executor = self._idle.pop()
            else:
                self._created += 1
                executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"request-{self._created}"
                )
            token = _lent.set((task, executor) if task is not None else None)
            try:
                async with ThreadSensitiveContext(executor=executor):
                    yield executor
            finally:
                _lent.reset(token)
                self._idle.append(executor)

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` on a borrowed thread, with its database connection released
        afterwards (as Channels' database_sync_to_async does)."""

        def call() -> T:
            close_old_connections()
            try:
                return func(*args)
            finally:
                close_old_connections()

        async with self.lend() as executor:
            return await on_thread(executor, call)


async def on_thread(executor: ThreadPoolExecutor, func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` on the lent thread of ``executor``, in a copy of the caller's
    context. The plain executor call costs a fraction of asgiref's sync_to_async, whose
    extras (thread-sensitivity routing, copying context changes back) a lent thread
    does not need: code there changes shared objects, never the context variables."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, contextvars.copy_context().run, func, *args)


request_threads = RequestThreads()

#: What a request's thread hands back to the event loop: status, headers and body of a
#: response already closed, or a streaming response still to iterate.
_Answer: TypeAlias = tuple[int, list[tuple[bytes, bytes]], bytes] | HttpResponseBase


class PooledThreadASGIHandler(ASGIHandler):
    """Django's ASGI handler running each request's sync handling in one hop to its
    borrowed thread (the middleware chain is loaded in sync mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware(is_async=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)  # a slow client holds no thread
        except RequestAborted:
            return
        async with request_threads.lend() as executor:
            answer = await on_thread(executor, self._answer, scope, body_file)
            if isinstance(answer, HttpResponseBase):
                try:
                    await self.send_response(answer, send)
                finally:
                    await on_thread(executor, answer.close)
                    body_file.close()
                return
        status, headers, body = answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _answer(self, scope: dict[str, Any], body_file: IO[bytes]) -> _Answer:
        """On the request's thread: what Django's ``handle`` does, in sync mode."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
        if response.streaming:
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
            return response
        try:
            headers = [
                (name.encode("ascii") if isinstance(name, str) else name,
                 value.encode("latin1") if isinstance(value, str) else value)
                for name, value in response.items()
            ]  # fmt: skip
            headers.extend(
                (b"Set-Cookie", cookie.output(header="").encode("ascii").strip())
                for cookie in response.cookies.values()
            )
            return response.status_code, headers, response.content
        finally:
            response.close()  # request_finished
            body_file.close()


def get_asgi_application() -> PooledThreadASGIHandler:
    django.setup(set_prefix=False)
    return PooledThreadASGIHandler()
