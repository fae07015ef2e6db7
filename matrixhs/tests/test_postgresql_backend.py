"""A busy pool is waited for, never taken for an outage; a known outage fails fast."""

from __future__ import annotations

import threading
import time
import unittest

from django.db import OperationalError, connection, connections
from django.test import TransactionTestCase

from matrixhs import outages


@unittest.skipUnless(connection.vendor == "postgresql", "the pool is PostgreSQL's")
class BusyPoolTests(TransactionTestCase):
    def tearDown(self) -> None:
        outages.database.reset()

    def _in_thread(self) -> dict[str, object]:
        """Open a connection on a new thread, as a request does; what happened."""
        result: dict[str, object] = {}

        def run() -> None:
            started = time.monotonic()
            try:
                connections["default"].ensure_connection()
                result["ok"] = True
            except OperationalError as exc:
                result["error"] = exc
            finally:
                result["took"] = time.monotonic() - started
                connections["default"].close()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=40)
        return result

    def test_a_request_waits_for_a_busy_pool_past_the_first_slice(self) -> None:
        connection.ensure_connection()
        pool = connection.pool
        held = [pool.getconn(timeout=5) for _ in range(pool.max_size - 1)]
        # Every connection is lent (the test's own plus the held ones); give one back
        # after two first-wait slices.
        threading.Timer(2.2, lambda: pool.putconn(held.pop())).start()
        try:
            result = self._in_thread()
        finally:
            for conn in held:
                pool.putconn(conn)
        self.assertTrue(result.get("ok"), result)
        self.assertGreater(result["took"], 2.0)
        self.assertFalse(outages.database.down, "a busy pool is not an outage")

    def test_while_the_database_is_known_down_requests_fail_at_once(self) -> None:
        outages.database.failed(ConnectionError("refused"))
        outages.database._next_probe = time.monotonic() + 60  # no probe due
        result = self._in_thread()
        self.assertIn("error", result)
        self.assertLess(result["took"], 0.5)
