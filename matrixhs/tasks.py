"""Celery tasks of the project package."""

from __future__ import annotations

from celery import shared_task

from matrixhs.background import run_job


@shared_task(acks_late=True)
def run_periodic_job(path: str) -> None:
    run_job(path)
