"""Django's ASGI handler, with the request threads kept instead of made anew.

Stock Django runs every request in a fresh ``ThreadSensitiveContext``: the request's
sync code (views, ORM) runs on a thread created for that request and joined afterwards,
which costs more than a cheap request itself. Here each request borrows a single-thread
executor from a pool and gives it back: sync code still runs on one thread per request,
as Django requires, but threads (and, on SQLite, their database connections) live on.
The long-poll consumers borrow from the same pool for each database read, and hold no
thread while they wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections

T = TypeVar("T")


class RequestThreads:
    """A pool of single-thread executors lent to one request (or one read) at a time."""

    def __init__(self) -> None:
        self._idle: list[ThreadPoolExecutor] = []
        self._created = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[None]:
        """Run the block's thread-sensitive sync code on one borrowed thread."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            from matrixhs.notifier import bind_server_loop  # the app registry is ready now

            bind_server_loop(loop)
            self._loop = loop
        if self._idle:
            executor = self._idle.pop()
        else:
            self._created += 1
            executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"request-{self._created}"
            )
        try:
            async with ThreadSensitiveContext(executor=executor):
                yield
        finally:
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

        async with self.lend():
            return await sync_to_async(call, thread_sensitive=True)()


request_threads = RequestThreads()


class PooledThreadASGIHandler(ASGIHandler):
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        async with request_threads.lend():
            await self.handle(scope, receive, send)


def get_asgi_application() -> PooledThreadASGIHandler:
    django.setup(set_prefix=False)
    return PooledThreadASGIHandler()
