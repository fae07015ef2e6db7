"""Metrics read at scrape time (queues, failures) and counted by Celery's signals."""

from __future__ import annotations

from celery.signals import task_postrun, task_prerun
from django.test import TestCase
from prometheus_client import REGISTRY, generate_latest

import matrixhs.celery  # noqa: F401  (connects the signal handlers)
from federation.models import Destination, OutboundEdu, OutboundPdu
from matrixhs import metrics


def _scrape() -> str:
    return generate_latest(REGISTRY).decode()


class QueueMetricsTests(TestCase):
    def test_federation_queues_and_failures_per_destination(self) -> None:
        Destination.objects.create(server_name="down.example", failures=3)
        Destination.objects.create(server_name="fine.example", failures=0)
        for n in range(2):
            OutboundPdu.objects.create(
                destination="down.example", room_id="!r:test.local", event_id=f"$e{n}",
                created_ms=1,
            )  # fmt: skip
        OutboundEdu.objects.create(
            destination="down.example", edu_type="m.typing", content={}, created_ms=1
        )
        text = _scrape()
        self.assertIn('matrixhs_federation_queue{destination="down.example",kind="pdu"} 2.0', text)
        self.assertIn('matrixhs_federation_queue{destination="down.example",kind="edu"} 1.0', text)
        self.assertIn(
            'matrixhs_federation_destination_failures{destination="down.example"} 3.0', text
        )
        self.assertNotIn('destination="fine.example"', text)
        self.assertIn("matrixhs_to_device_queue 0.0", text)
        self.assertIn("matrixhs_request_threads ", text)


class _Task:
    name = "federation.tasks.send_transaction"


class CeleryMetricsTests(TestCase):
    def test_task_outcomes_and_durations_are_counted(self) -> None:
        task = _Task()
        done = metrics.CELERY_TASKS.labels(task.name, "success")
        failed = metrics.CELERY_TASKS.labels(task.name, "failure")
        before_done, before_failed = done._value.get(), failed._value.get()
        for task_id, state in (("t1", "SUCCESS"), ("t2", "FAILURE"), ("t3", "SUCCESS")):
            task_prerun.send(sender=task, task_id=task_id, task=task)
            task_postrun.send(sender=task, task_id=task_id, task=task, state=state)
        self.assertEqual(done._value.get(), before_done + 2)
        self.assertEqual(failed._value.get(), before_failed + 1)
        self.assertIn(
            'matrixhs_celery_task_duration_seconds_count{task="federation.tasks.send_transaction"}',
            _scrape(),
        )
