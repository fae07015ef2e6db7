"""The Redis cache's process-local stand-in, and how an outage is noticed and reported."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest
from django.test import SimpleTestCase

from matrixhs import metrics, outages
from matrixhs.cache import FallbackRedisCache
from matrixhs.notifier import POLL_INTERVAL_S, WakeUps


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _value(metric: object, *labels: str) -> float:
    return float(metric.labels(*labels)._value.get())  # type: ignore[attr-defined]


class FallbackCacheTests(SimpleTestCase):
    def setUp(self) -> None:
        outages.redis.reset()
        self.addCleanup(outages.redis.reset)
        # Nothing listens on this port: every Redis call fails at once.
        self.cache = FallbackRedisCache(
            f"redis://127.0.0.1:{free_port()}/0",
            {"OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}},
        )

    def test_unreachable_redis_falls_back_to_process_memory(self) -> None:
        self.assertTrue(self.cache.add("k", 0, timeout=10))
        self.assertEqual(self.cache.incr("k"), 1)
        self.assertEqual(self.cache.incr("k"), 2)
        self.assertEqual(self.cache.get_many(["k", "other"]), {"k": 2})
        self.assertTrue(outages.redis.down)

    def test_one_warning_per_outage_and_one_line_on_recovery(self) -> None:
        before = _value(metrics.DEPENDENCY_OUTAGES, "redis")
        with self.assertLogs("matrixhs.outages", level="INFO") as logs:
            for _ in range(50):
                self.cache.get("k")
            outages.redis.succeeded()
        self.assertEqual(_value(metrics.DEPENDENCY_OUTAGES, "redis"), before + 1)
        warnings = [r for r in logs.records if r.levelno == logging.WARNING]
        self.assertEqual(len(warnings), 1)
        self.assertIn("redis is unreachable", warnings[0].getMessage())
        self.assertIsNone(warnings[0].exc_info)
        self.assertIn("redis is back", logs.records[-1].getMessage())
        self.assertEqual(_value(metrics.DEPENDENCY_UP, "redis"), 1)

    def test_while_down_redis_is_tried_once_per_probe_interval(self) -> None:
        outages.redis.failed(ConnectionError("refused"))
        self.assertFalse(outages.redis.should_try())
        outages.redis._next_probe = time.monotonic() - 1  # the interval has passed
        self.assertTrue(outages.redis.should_try())
        self.assertFalse(outages.redis.should_try(), "one caller probes, the others wait")


class _DeadLayer:
    """A Redis channel layer whose server is gone."""

    async def new_channel(self) -> str:
        raise ConnectionError("Connection refused")


class WakeUpsOutageTests(SimpleTestCase):
    def setUp(self) -> None:
        outages.redis.reset()
        self.addCleanup(outages.redis.reset)

    def test_without_redis_a_waiter_polls(self) -> None:
        async def scenario() -> tuple[bool, float]:
            wake_ups = WakeUps("@bob:test.local")
            wake_ups.layer, wake_ups.remote = _DeadLayer(), True
            async with wake_ups:
                self.assertTrue(wake_ups.polling)
                started = time.monotonic()
                woke = await wake_ups.wait(POLL_INTERVAL_S + 5)
                return woke, time.monotonic() - started

        with self.assertLogs("matrixhs.outages", level="WARNING"):
            woke, waited = asyncio.run(scenario())
        self.assertTrue(woke, "read again after a poll interval")
        self.assertLess(waited, POLL_INTERVAL_S + 1)
        self.assertTrue(outages.redis.down)


@pytest.mark.parametrize("exc", [ConnectionError("refused"), TimeoutError()])
def test_the_layer_filter_drops_unreachable_records(exc: BaseException) -> None:
    outages.redis.reset()
    record = logging.LogRecord("channels_redis.pubsub", logging.ERROR, "", 1, "x", (), None)
    record.exc_info = (type(exc), exc, None)
    try:
        assert outages.QuietOutages().filter(record) is False
        assert outages.redis.down
    finally:
        outages.redis.reset()


def test_the_layer_filter_keeps_other_records() -> None:
    record = logging.LogRecord("channels_redis.pubsub", logging.ERROR, "", 1, "x", (), None)
    record.exc_info = (ValueError, ValueError("bug"), None)
    assert outages.QuietOutages().filter(record) is True
