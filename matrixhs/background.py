"""Background work that must happen whatever the mode.

Each job is a plain function (an action) that reads its work from the database, so
running it twice is harmless. In the scaled mode Celery beat schedules the jobs
(matrixhs.celery); in the embedded mode `manage.py serve` runs them on a thread of its
own with :class:`BackgroundRunner`. The list below is the single source for both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import close_old_connections
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    path: str  # dotted path of a function taking no argument
    every_seconds: float


PERIODIC_JOBS = [
    PeriodicJob("accounts.actions.uia.purge_expired_sessions", 300),
    PeriodicJob("sync.presence.expire_idle_presence", 60),
    PeriodicJob("federation.actions.sending.send_due", 5),
    PeriodicJob("push.actions.delivery.send_due", 5),
    PeriodicJob("media.actions.do_purge_by_retention", 3600),
    PeriodicJob("rooms.actions.membership.leave_rooms_of_deactivated_users", 60),
    PeriodicJob("serveradmin.actions.rooms.run_room_deletions", 5),
]


def run_job(path: str) -> None:
    """Run one job by its dotted path (also the body of the Celery task)."""
    func: Callable[[], object] = import_string(path)
    func()


class BackgroundRunner(threading.Thread):
    """Runs PERIODIC_JOBS in-process until stopped (embedded mode)."""

    def __init__(self, jobs: list[PeriodicJob] | None = None, tick_seconds: float = 1.0) -> None:
        super().__init__(name="matrixhs-background", daemon=True)
        self.jobs = jobs if jobs is not None else PERIODIC_JOBS
        self.tick_seconds = tick_seconds
        self.stopping = threading.Event()

    def run(self) -> None:
        due = {job.path: 0.0 for job in self.jobs}
        elapsed = 0.0
        while not self.stopping.is_set():
            for job in self.jobs:
                if elapsed >= due[job.path]:
                    self._run_one(job)
                    due[job.path] = elapsed + job.every_seconds
            self.stopping.wait(self.tick_seconds)
            elapsed += self.tick_seconds

    def _run_one(self, job: PeriodicJob) -> None:
        close_old_connections()
        try:
            run_job(job.path)
        except Exception:
            logger.exception("Background job %s failed", job.path)
        finally:
            close_old_connections()

    def stop(self) -> None:
        self.stopping.set()
