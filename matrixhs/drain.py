"""Who runs a durable queue's drain in this process, one key at a time.

A queue here is rows in the database, drained by an idempotent action taking one key (a
federation destination, a pusher). Scaled mode: a Celery task per key. Embedded mode: a
small pool of threads of `manage.py serve`, one key per thread at a time, so one slow
remote never holds up the others; a key woken while it is being drained is drained once
more afterwards, after the keys already waiting for a thread. Elsewhere (commands, tests)
nothing is started: the periodic job, or the test itself, drains the queue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.utils.module_loading import import_string

from matrixhs import outages

logger = logging.getLogger(__name__)


class KeyedDrainer:
    """Runs ``drain_path(key)`` for the keys woken: ``drain_path`` and ``task_path`` are
    dotted paths of the action and of the Celery task that calls it."""

    def __init__(self, name: str, drain_path: str, task_path: str) -> None:
        self.name = name
        self.drain_path = drain_path
        self.task_path = task_path
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        #: Keys being drained here, and those woken again meanwhile.
        self._running: set[str] = set()
        self._again: set[str] = set()

    def start(self, threads: int = 8) -> None:
        """Start the in-process pool (embedded mode, from `manage.py serve`)."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=threads, thread_name_prefix=self.name
                )

    def stop(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def wake(self, keys: Iterable[str]) -> None:
        """Look at these keys' queues now."""
        keys = set(keys)
        if not settings.EMBEDDED:
            if not outages.redis.should_try():
                return  # the broker is down: the periodic sweep will catch up
            task: Any = import_string(self.task_path)
            for key in sorted(keys):
                try:
                    task.delay(key)
                except Exception as exc:  # the broker is down: the sweep will catch up
                    outages.redis.failed(exc)
                    return
            outages.redis.succeeded()
            return
        with self._lock:
            if self._executor is None:
                return
            for key in keys:
                if key in self._running:
                    self._again.add(key)
                    continue
                self._running.add(key)
                self._executor.submit(self._run, key)

    def _run(self, key: str) -> None:
        drain: Callable[[str], object] = import_string(self.drain_path)
        while True:
            close_old_connections()
            try:
                drain(key)
            except Exception:
                logger.exception("%s of %s failed", self.drain_path, key)
            finally:
                close_old_connections()
            with self._lock:
                if key not in self._again:
                    self._running.discard(key)
                    return
                self._again.discard(key)
                if self._executor is not None:
                    # Woken again: to the back of the line, so that every other key
                    # waiting for a thread has its turn first.
                    self._executor.submit(self._run, key)
                    return
