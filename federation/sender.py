"""Who runs the outbound queue (federation.actions.sending.drain) in this process.

Scaled mode: a Celery task per destination (federation.tasks). Embedded mode: a small
pool of threads of `manage.py serve`, one destination per thread at a time, so a slow
server never holds up the others (matrixhs.drain). Elsewhere (commands, tests) nothing
is started: the periodic job, or the test itself, drains the queue.
"""

from __future__ import annotations

from matrixhs.drain import KeyedDrainer

_drainer = KeyedDrainer(
    "fed-send", "federation.actions.sending.drain", "federation.tasks.send_to_destination"
)


def start(threads: int = 8) -> None:
    """Start the in-process sender (embedded mode, from `manage.py serve`)."""
    _drainer.start(threads)


def stop() -> None:
    _drainer.stop()


def wake(destinations: set[str]) -> None:
    """Look at these destinations' queues now."""
    _drainer.wake(destinations)
