"""Wake-ups: "a stream advanced for these users" (DESIGN: Sync and notification).

A writer calls :func:`notify_users_on_commit` inside its transaction; once it commits,
every waiting /sync of those users is woken: in the embedded mode (one process) straight
through :data:`local_waiters`, in the scaled mode through the channel layer (Redis,
across processes). A wake-up carries no data: the woken request recomputes its answer
from the database, so a lost wake-up only delays an answer until its timeout.

The embedded mode does not go through Channels' in-memory layer: its group_send sweeps
every channel and group of the process for expiry on each call, so a message to a room of
1,000 members with 1,000 waiting clients cost a million steps on the server's loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

from matrixhs import metrics, outages
from matrixhs.cache import UNREACHABLE

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


#: How often a waiting request re-reads the database while the channel layer (Redis) is
#: down: wake-ups cannot cross processes then, so waiters poll.
POLL_INTERVAL_S = 2.0


async def _send_all(layer: Any, groups: list[str]) -> None:
    if not outages.redis.should_try():
        return  # the waiters poll the database meanwhile
    for group in groups:
        try:
            await layer.group_send(group, WAKE_UP)
        except UNREACHABLE as exc:  # the waiters poll until Redis is back
            outages.redis.failed(exc)
            return
        except Exception:  # a lost wake-up only delays a reply until its timeout
            logger.warning("Could not send a wake-up to %s", group, exc_info=True)
            return
    outages.redis.succeeded()


class LocalWaiters:
    """The waiting requests of this process by user, for the embedded mode: a wake-up is
    a dictionary lookup per user and an event set on the waiter's own loop, from any
    thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def add(self, user_id: str, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            self._waiting.setdefault(user_id, set()).add(waiter)

    def discard(
        self, user_id: str, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event]
    ) -> None:
        with self._lock:
            waiters = self._waiting.get(user_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiting[user_id]

    def wake(self, user_ids: Iterable[str]) -> None:
        with self._lock:
            woken = [w for user_id in user_ids for w in self._waiting.get(user_id, ())]
        for loop, event in woken:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that request's loop has closed: nobody waits there
                pass


#: The embedded mode's waiters (see the module docstring).
local_waiters = LocalWaiters()


def notify_users(user_ids: Iterable[str]) -> None:
    """Wake the waiting requests of ``user_ids`` (call after commit).

    In the embedded mode the waiters of this process are woken at once. Otherwise, in the
    server, the sends are handed to its event loop and not waited for (the request
    thread goes on at once); elsewhere (commands, Celery, tests) they run to completion
    here.
    """
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        local_waiters.wake(set(user_ids))
        return
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

    While Redis is down (matrixhs.outages) there is no subscription: ``wait`` returns
    every POLL_INTERVAL_S, and the caller re-reads the database. A request already
    waiting when the outage starts is told so and polls from then on.
    """

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.group = group_for_user(user_id)
        self.layer = get_channel_layer()
        self.channel: str | None = None
        #: The embedded mode's subscription (:data:`local_waiters`), set on entry.
        self._local: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        #: Whether this layer crosses processes through Redis (and so can be down).
        self.remote = self.layer is not None and "Redis" in type(self.layer).__name__
        self._interrupt: asyncio.Future[None] | None = None

    async def __aenter__(self) -> WakeUps:
        metrics.SYNC_WAITERS.inc()
        if isinstance(self.layer, InMemoryChannelLayer):
            self._local = (asyncio.get_running_loop(), asyncio.Event())
            local_waiters.add(self.user_id, self._local)
            return self
        if self.layer is None or (self.remote and not outages.redis.should_try()):
            return self
        try:
            channel = await self.layer.new_channel()
            await self.layer.group_add(self.group, channel)
        except UNREACHABLE as exc:
            outages.redis.failed(exc)
            return self
        if self.remote:
            outages.redis.succeeded()
        self.channel = channel
        _subscribed.add(self)
        return self

    @property
    def polling(self) -> bool:
        return self.layer is not None and self.channel is None and self._local is None

    async def wait(self, timeout: float) -> bool:
        """Wait for a wake-up; False when ``timeout`` (seconds) ran out first. While
        polling, True after at most POLL_INTERVAL_S (read again)."""
        timeout = max(0.0, timeout)
        if self._local is not None:
            event = self._local[1]
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except TimeoutError:
                return False
            event.clear()
            metrics.SYNC_WAKEUPS.inc()
            return True
        if self.layer is None:
            await asyncio.sleep(timeout)
            return False
        if self.channel is None or (self.remote and outages.redis.down):
            await asyncio.sleep(min(timeout, POLL_INTERVAL_S))
            return timeout > POLL_INTERVAL_S
        self._interrupt = asyncio.get_running_loop().create_future()
        receive = asyncio.ensure_future(self.layer.receive(self.channel))
        try:
            done, _ = await asyncio.wait(
                {receive, self._interrupt}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            self._interrupt = None
            if not receive.done():
                receive.cancel()
        if receive in done and receive.exception() is None:
            metrics.SYNC_WAKEUPS.inc()
            return True
        return bool(done)  # interrupted by an outage: read again, then poll

    def interrupt(self) -> None:
        """The channel layer went down: stop waiting on it (on the server's loop)."""
        if self._interrupt is not None and not self._interrupt.done():
            self._interrupt.set_result(None)

    async def __aexit__(self, *exc: object) -> None:
        metrics.SYNC_WAITERS.dec()
        if self._local is not None:
            local_waiters.discard(self.user_id, self._local)
            return
        if self.channel is None:
            return
        _subscribed.discard(self)
        try:
            await self.layer.group_discard(self.group, self.channel)
        except UNREACHABLE as error:
            outages.redis.failed(error)


#: The requests waiting on the channel layer now (in this process).
_subscribed: weakref.WeakSet[WakeUps] = weakref.WeakSet()


def _on_redis_change(up: bool) -> None:
    """When Redis goes down, the requests waiting on it switch to polling."""
    loop = _server_loop
    if up or loop is None or not loop.is_running():
        return

    def interrupt_all() -> None:
        for wake_ups in list(_subscribed):
            wake_ups.interrupt()

    loop.call_soon_threadsafe(interrupt_all)


outages.redis.on_change(_on_redis_change)
