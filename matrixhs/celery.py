"""The Celery app of the scaled mode (REDIS_URL set): `celery -A matrixhs worker`."""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init

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


# --- Metrics (README: "Metrics") ---------------------------------------------------------

_started: dict[str, float] = {}


@task_prerun.connect
def _task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.perf_counter()


@task_postrun.connect
def _task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    from matrixhs import metrics

    name = getattr(task, "name", "unknown")
    metrics.CELERY_TASKS.labels(name, (state or "unknown").lower()).inc()
    started = _started.pop(task_id or "", None)
    if started is not None:
        metrics.CELERY_TASK_DURATION.labels(name).observe(time.perf_counter() - started)


@worker_process_init.connect
def _serve_metrics(**_: Any) -> None:
    """Each pool process of a worker serves its own metrics, on MATRIXHS_METRICS_BIND's
    port plus the process's index (1, 2, ...): scrape each one."""
    from billiard.process import current_process
    from django.conf import settings
    from prometheus_client import start_http_server

    if settings.MATRIXHS_METRICS_BIND is not None:
        host, port = settings.MATRIXHS_METRICS_BIND
        start_http_server(port + (getattr(current_process(), "index", 0) or 0), addr=host)
