"""The server's Prometheus metrics (prometheus-client), one registry per process.

They are always counted (an increment costs about a microsecond) and served only when
the operator asks for them (README: "Metrics"): on MATRIXHS_METRICS_BIND, or on the main
listener at /metrics behind MATRIXHS_METRICS_TOKEN. With several processes, each one
serves its own figures: scrape every process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Metric, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily

disable_created_metrics()  # the *_created series: half the scrape, no use here

DEPENDENCY_UP = Gauge(
    "matrixhs_dependency_up",
    "Whether a service the server uses answers (1) or not (0)",
    ["dependency"],
)
DEPENDENCY_OUTAGES = Counter(
    "matrixhs_dependency_outages",
    "Outages of a service the server uses, as seen here",
    ["dependency"],
)
DEPENDENCY_FALLBACKS = Counter(
    "matrixhs_dependency_fallbacks",
    "Calls served by a fallback because the service was down",
    ["dependency"],
)

HTTP_REQUESTS = Counter(
    "matrixhs_http_requests",
    "HTTP requests answered, by endpoint pattern, method and status",
    ["endpoint", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "matrixhs_http_request_duration_seconds",
    "Time to answer an HTTP request (long-polls included), by endpoint pattern",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
EVENTS_PERSISTED = Counter("matrixhs_events_persisted", "Room events stored, by origin", ["origin"])
SYNC_WAITERS = Gauge("matrixhs_sync_waiters", "Long-polling sync requests waiting now")
SYNC_WAKEUPS = Counter("matrixhs_sync_wakeups", "Wake-ups received by waiting sync requests")
CELERY_TASKS = Counter(
    "matrixhs_celery_tasks", "Celery tasks run here, by task and outcome", ["task", "outcome"]
)
CELERY_TASK_DURATION = Histogram(
    "matrixhs_celery_task_duration_seconds", "Run time of Celery tasks", ["task"]
)


class QueueCollector:
    """Figures read from the database (and the pools) when the metrics are scraped: the
    to-device queue, each federation destination's queue and failures, and the database
    connection pool and request threads of this process."""

    def describe(self) -> list[Metric]:
        return [family for family, _ in self._families()]

    def _families(self) -> list[tuple[Metric, str]]:
        return [
            (GaugeMetricFamily("matrixhs_to_device_queue", "To-device messages not yet "
                               "delivered"), "to_device"),
            (GaugeMetricFamily("matrixhs_federation_queue", "Events and EDUs waiting for a "
                               "destination", labels=["destination", "kind"]), "federation"),
            (GaugeMetricFamily("matrixhs_federation_destination_failures", "Consecutive "
                               "failed sends to a destination", labels=["destination"]),
             "failures"),
            (GaugeMetricFamily("matrixhs_db_pool_connections", "Connections of this "
                               "process's database pool", labels=["state"]), "pool"),
            (GaugeMetricFamily("matrixhs_request_threads", "Request threads made by this "
                               "process"), "threads"),
        ]  # fmt: skip

    def collect(self) -> Iterator[Metric]:
        from django.db import DatabaseError, close_old_connections, connection

        families = dict((key, family) for family, key in self._families())
        self._collect_process(families)
        # The scraping thread gives its connection back to the pool (not inside a
        # transaction: a test's, or a caller's).
        release = not connection.in_atomic_block
        if release:
            close_old_connections()
        try:
            self._collect_queues(families)
        except DatabaseError:
            pass  # the database is down: the queue figures are left out of this scrape
        finally:
            if release:
                close_old_connections()
        for family in families.values():
            if family.samples or family.name in (
                "matrixhs_request_threads",
                "matrixhs_to_device_queue",
            ):
                yield family

    @staticmethod
    def _collect_process(families: dict[str, Any]) -> None:
        from matrixhs.asgi_handler import request_threads

        families["threads"].add_metric([], request_threads.created)
        try:
            from django.db.backends.postgresql.base import DatabaseWrapper
        except ImportError:
            return
        pool = DatabaseWrapper._connection_pools.get("default")
        if pool is not None:
            stats = pool.get_stats()
            families["pool"].add_metric(["open"], stats.get("pool_size", 0))
            families["pool"].add_metric(["idle"], stats.get("pool_available", 0))
            families["pool"].add_metric(["waiting_requests"], stats.get("requests_waiting", 0))

    @staticmethod
    def _collect_queues(families: dict[str, Any]) -> None:
        from django.db.models import Count

        from e2ee.models import ToDeviceMessage
        from federation.models import Destination, OutboundEdu, OutboundPdu

        families["to_device"].add_metric([], ToDeviceMessage.objects.count())
        for model, kind in ((OutboundPdu, "pdu"), (OutboundEdu, "edu")):
            rows = model.objects.values_list("destination").annotate(n=Count("id"))
            for destination, count in rows:
                families["federation"].add_metric([destination, kind], count)
        failing = Destination.objects.filter(failures__gt=0).values_list("server_name", "failures")
        for destination, failures in failing:
            families["failures"].add_metric([destination], failures)


REGISTRY.register(QueueCollector())
