"""Who runs the outbound queue (federation.actions.sending.drain) in this process.

Scaled mode: a Celery task per destination (federation.tasks). Embedded mode: a small
pool of threads of `manage.py serve`, one destination per thread at a time, so a slow
server never holds up the others. Elsewhere (commands, tests) nothing is started: the
periodic job, or the test itself, drains the queue.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
#: Destinations being drained here, and those woken again meanwhile.
_running: set[str] = set()
_again: set[str] = set()


def start(threads: int = 8) -> None:
    """Start the in-process sender (embedded mode, from `manage.py serve`)."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fed-send")


def stop() -> None:
    global _executor
    with _lock:
        executor, _executor = _executor, None
    if executor is not None:
        executor.shutdown(wait=False, cancel_futures=True)


def wake(destinations: set[str]) -> None:
    """Look at these destinations' queues now."""
    if not settings.EMBEDDED:
        from federation.tasks import send_to_destination

        for destination in sorted(destinations):
            try:
                send_to_destination.delay(destination)
            except Exception:  # the broker is down: the periodic sweep will catch up
                logger.warning("Could not queue federation sending to %s", destination)
        return
    with _lock:
        if _executor is None:
            return
        for destination in destinations:
            if destination in _running:
                _again.add(destination)
                continue
            _running.add(destination)
            _executor.submit(_run, destination)


def _run(destination: str) -> None:
    from federation.actions.sending import drain

    while True:
        close_old_connections()
        try:
            drain(destination)
        except Exception:
            logger.exception("Sending to %s failed", destination)
        finally:
            close_old_connections()
        with _lock:
            if destination not in _again:
                _running.discard(destination)
                return
            _again.discard(destination)
