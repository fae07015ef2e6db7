"""Wake-ups: "a stream advanced for these users" (DESIGN: Sync and notification).

A writer calls :func:`notify_users_on_commit` inside its transaction; once it commits,
every waiting /sync of those users is woken through the channel layer (in-process in the
embedded mode, Redis across processes in the scaled mode). A wake-up carries no data:
the woken request recomputes its answer from the database, so a lost wake-up only
delays an answer until its timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

WAKE_UP = {"type": "stream.advanced"}


def group_for_user(user_id: str) -> str:
    """The channel-layer group of a user's waiting requests (group names are ASCII)."""
    return "u." + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:32]


_server_loop: asyncio.AbstractEventLoop | None = None


def bind_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """The ASGI server's event loop: wake-ups from request threads are handed to it."""
    global _server_loop
    _server_loop = loop


async def _send_all(layer: Any, groups: list[str]) -> None:
    for group in groups:
        try:
            await layer.group_send(group, WAKE_UP)
        except Exception:  # a lost wake-up only delays a reply until its timeout
            logger.warning("Could not send a wake-up to %s", group, exc_info=True)


def notify_users(user_ids: Iterable[str]) -> None:
    """Wake the waiting requests of ``user_ids`` (call after commit).

    In the server, the sends are handed to its event loop and not waited for (the request
    thread goes on at once, and the in-memory layer is only ever used from its own loop);
    elsewhere (commands, Celery, tests) they run to completion here.
    """
    layer = get_channel_layer()
    groups = sorted({group_for_user(user_id) for user_id in user_ids})
    if layer is None or not groups:
        return
    loop = _server_loop
    if loop is not None and loop.is_running():
        asyncio.run_coroutine_threadsafe(_send_all(layer, groups), loop)
        return
    async_to_sync(_send_all)(layer, groups)


def run_later(delay_s: float, func: Any, *args: Any) -> bool:
    """Run ``func(*args)`` on a worker thread after ``delay_s`` seconds, from the server's
    event loop (for timers such as typing expiry). False when there is no server loop
    (commands, tests): the caller's state must then expire lazily, as it does anyway."""
    loop = _server_loop
    if loop is None or not loop.is_running():
        return False

    def start() -> None:
        loop.call_later(delay_s, lambda: loop.run_in_executor(None, func, *args))

    loop.call_soon_threadsafe(start)
    return True


def notify_users_on_commit(user_ids: Iterable[str]) -> None:
    """Wake the waiting requests of ``user_ids`` once the current transaction commits."""
    targets = list(user_ids)
    if targets:
        transaction.on_commit(lambda: notify_users(targets))


class WakeUps:
    """A waiting request's subscription to its user's wake-ups (DESIGN: matrixhs/notifier.py).

    Subscribe *before* reading the database, so that a change committed between the read
    and the wait still wakes the request::

        async with WakeUps(user_id) as wake_ups:
            answer = await read()
            while answer is empty and time remains:
                await wake_ups.wait(remaining)
                answer = await read()
    """

    def __init__(self, user_id: str) -> None:
        self.group = group_for_user(user_id)
        self.layer = get_channel_layer()
        self.channel: str | None = None

    async def __aenter__(self) -> WakeUps:
        if self.layer is not None:
            self.channel = await self.layer.new_channel()
            await self.layer.group_add(self.group, self.channel)
        return self

    async def wait(self, timeout: float) -> bool:
        """Wait for a wake-up; False when ``timeout`` (seconds) ran out first."""
        if self.layer is None or self.channel is None:
            await asyncio.sleep(max(0.0, timeout))
            return False
        try:
            await asyncio.wait_for(self.layer.receive(self.channel), max(0.0, timeout))
        except TimeoutError:
            return False
        return True

    async def __aexit__(self, *exc: object) -> None:
        if self.layer is not None and self.channel is not None:
            await self.layer.group_discard(self.group, self.channel)
