"""Django's ASGI handler, with the request threads kept instead of made anew.

Stock Django runs every request in a fresh ``ThreadSensitiveContext``: the request's
sync code (views, ORM) runs on a thread created for that request and joined afterwards,
which costs more than a cheap request itself. Here each request borrows a single-thread
executor from a pool and gives it back: sync code still runs on one thread per request,
as Django requires, but threads (and, on SQLite, their database connections) live on.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler


class PooledThreadASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []
        self._created = 0
        self._loop_bound = False

    def _acquire(self) -> ThreadPoolExecutor:
        if self._idle:
            return self._idle.pop()
        self._created += 1
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"request-{self._created}")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not self._loop_bound:
            from sync.notifier import bind_server_loop  # the app registry is ready now

            bind_server_loop(asyncio.get_running_loop())
            self._loop_bound = True
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self._acquire()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self._idle.append(executor)


def get_asgi_application() -> PooledThreadASGIHandler:
    django.setup(set_prefix=False)
    return PooledThreadASGIHandler()
