"""Celery tasks of the federation app (scaled mode)."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def send_to_destination(destination: str) -> None:
    from federation.actions.sending import drain

    drain(destination)
