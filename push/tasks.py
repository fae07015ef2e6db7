"""Celery tasks of the push app (scaled mode)."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def deliver_to_pusher(pusher_id: str) -> None:
    from push.actions.delivery import drain

    drain(pusher_id)
