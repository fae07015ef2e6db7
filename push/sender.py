"""Who runs push delivery (push.actions.delivery.drain) in this process: a Celery task
per pusher in the scaled mode (push.tasks), a pool of threads of `manage.py serve` in
the embedded mode (matrixhs.drain), nothing elsewhere (the periodic job, or a test,
drains the queue)."""

from __future__ import annotations

from collections.abc import Iterable

from matrixhs.drain import KeyedDrainer

_drainer = KeyedDrainer("push-send", "push.actions.delivery.drain", "push.tasks.deliver_to_pusher")


def start(threads: int = 4) -> None:
    _drainer.start(threads)


def stop() -> None:
    _drainer.stop()


def wake(pusher_ids: Iterable[str]) -> None:
    """Look at these pushers' queues now (keys are pusher primary keys as strings)."""
    _drainer.wake(pusher_ids)
