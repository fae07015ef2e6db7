"""Wake-ups in the embedded mode (matrixhs.notifier.local_waiters): no channel layer
between the writer and the waiting requests of this process."""

from __future__ import annotations

import asyncio
import threading
from unittest import mock

from channels.layers import InMemoryChannelLayer
from django.test import SimpleTestCase

from matrixhs.notifier import WakeUps, local_waiters, notify_users


class LocalWakeUpTests(SimpleTestCase):
    def setUp(self) -> None:
        super().setUp()
        # The embedded mode's layer, whatever REDIS_URL says for this run.
        layer = InMemoryChannelLayer()
        self.enterContext(mock.patch("matrixhs.notifier.get_channel_layer", return_value=layer))

    def test_a_waiter_is_woken_from_another_thread_and_others_are_not(self) -> None:
        async def scenario() -> tuple[bool, bool]:
            async with WakeUps("@bob:test.local") as bob, WakeUps("@eve:test.local") as eve:
                thread = threading.Thread(target=notify_users, args=(["@bob:test.local"],))
                thread.start()
                woken = await bob.wait(5)
                thread.join()
                return woken, await eve.wait(0.2)

        self.assertEqual(asyncio.run(scenario()), (True, False))

    def test_a_wake_up_before_the_wait_is_not_lost_and_is_used_once(self) -> None:
        async def scenario() -> tuple[bool, bool]:
            async with WakeUps("@bob:test.local") as bob:
                notify_users(["@bob:test.local"])  # after subscribing, before waiting
                return await bob.wait(5), await bob.wait(0.2)

        self.assertEqual(asyncio.run(scenario()), (True, False))

    def test_a_request_that_stopped_waiting_is_forgotten(self) -> None:
        async def scenario() -> None:
            async with WakeUps("@bob:test.local"):
                self.assertIn("@bob:test.local", local_waiters._waiting)
            self.assertNotIn("@bob:test.local", local_waiters._waiting)

        asyncio.run(scenario())
        notify_users(["@bob:test.local"])  # nobody waits: nothing to do, no error
