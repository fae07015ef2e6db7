"""The in-process drainer: one key per thread at a time, and a key woken again while it
is drained goes after the keys already waiting."""

from __future__ import annotations

import threading

from django.test import SimpleTestCase, override_settings

from matrixhs.drain import KeyedDrainer

ORDER: list[str] = []
STARTED = threading.Event()
RELEASE = threading.Event()
DONE = threading.Semaphore(0)


def record(key: str) -> None:
    ORDER.append(key)
    if len(ORDER) == 1:
        STARTED.set()
        RELEASE.wait(5)
    DONE.release()


@override_settings(EMBEDDED=True)
class KeyedDrainerTests(SimpleTestCase):
    def test_a_key_woken_again_waits_for_the_others(self) -> None:
        drainer = KeyedDrainer("test", f"{__name__}.record", "unused.task")
        drainer.start(threads=1)
        self.addCleanup(drainer.stop)
        drainer.wake({"busy"})
        self.assertTrue(STARTED.wait(5))
        drainer.wake({"busy"})  # more for it while it is drained
        drainer.wake({"quiet"})
        RELEASE.set()
        for _ in range(3):
            self.assertTrue(DONE.acquire(timeout=5))
        self.assertEqual(ORDER, ["busy", "quiet", "busy"])
