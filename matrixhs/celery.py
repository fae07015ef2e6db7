"""The Celery app of the scaled mode (REDIS_URL set): `celery -A matrixhs worker`."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "matrixhs.settings")

app = Celery("matrixhs")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _beat_schedule() -> dict[str, dict[str, object]]:
    from matrixhs.background import PERIODIC_JOBS

    return {
        job.path: {
            "task": "matrixhs.tasks.run_periodic_job",
            "schedule": job.every_seconds,
            "args": [job.path],
        }
        for job in PERIODIC_JOBS
    }


app.conf.beat_schedule = _beat_schedule()
