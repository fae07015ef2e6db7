"""The request threads (matrixhs.asgi_handler): capped, queued, and never held while a
request waits for its client or a long-poll waits for news. Through the whole ASGI
application; TransactionTestCase, since requests run on their own threads."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from asgiref.testing import ApplicationCommunicator
from django.core.signals import request_finished
from django.test import TransactionTestCase, override_settings

from accounts.actions.devices import do_login_device
from accounts.actions.tokens import issue_tokens
from accounts.actions.users import do_register_user
from matrixhs.asgi import application
from matrixhs.testing import asgi_request

WHOAMI = "/_matrix/client/v3/account/whoami"


@override_settings(MATRIXHS_REQUEST_THREADS=2)
class RequestThreadTests(TransactionTestCase):
    def setUp(self) -> None:
        user = do_register_user("alice", "pw")
        self.token = issue_tokens(user, do_login_device(user, None, None), False)["access_token"]
        self.auth = {"Authorization": f"Bearer {self.token}"}

    def communicator(self, method: str, path: str, query: str = "") -> ApplicationCommunicator:
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": [(b"authorization", f"Bearer {self.token}".encode())],
            "client": ("127.0.0.1", 9),
            "server": ("127.0.0.1", 8008),
        }
        return ApplicationCommunicator(application, scope)

    async def whoami_within(self, seconds: float) -> None:
        started = time.monotonic()
        response = await asgi_request("GET", WHOAMI, headers=self.auth)
        self.assertEqual(response.status_code, 200)
        self.assertLess(time.monotonic() - started, seconds)

    async def test_concurrent_requests_queue_for_a_capped_set_of_threads(self) -> None:
        threads: set[int] = set()

        def seen(**kwargs: Any) -> None:  # runs on the request's thread
            threads.add(threading.get_ident())

        request_finished.connect(seen)
        try:
            responses = await asyncio.gather(
                *(asgi_request("GET", WHOAMI, headers=self.auth) for _ in range(12))
            )
        finally:
            request_finished.disconnect(seen)
        self.assertEqual([r.status_code for r in responses], [200] * 12)
        self.assertLessEqual(len(threads), 2)

    async def test_a_slow_upload_holds_no_thread(self) -> None:
        uploads = []
        for _ in range(3):  # more than the cap: each has sent half of its body
            upload = self.communicator("PUT", "/_matrix/client/v3/user/@alice:x/account_data/t")
            await upload.send_input({"type": "http.request", "body": b'{"a"', "more_body": True})
            uploads.append(upload)
        await self.whoami_within(5)
        for upload in uploads:
            await upload.send_input({"type": "http.disconnect"})
            await upload.wait(timeout=3)

    async def test_waiting_syncs_hold_no_thread(self) -> None:
        first = await asgi_request("GET", "/_matrix/client/v3/sync", headers=self.auth)
        since = first.body["next_batch"]
        syncs = []
        for _ in range(3):  # more than the cap
            sync = self.communicator(
                "GET", "/_matrix/client/v3/sync", f"since={since}&timeout=20000"
            )
            await sync.send_input({"type": "http.request", "body": b""})
            syncs.append(sync)
        self.assertTrue(await syncs[-1].receive_nothing(timeout=0.3))  # they wait
        await self.whoami_within(5)
        put = await asgi_request(
            "PUT",
            "/_matrix/client/v3/user/@alice:test.local/account_data/m.wake",
            {"x": 1},
            headers=self.auth,
        )
        self.assertEqual(put.status_code, 200, put.body)
        for sync in syncs:  # woken by the account data, each reads on a thread in turn
            start = await sync.receive_output(timeout=5)
            body = json.loads((await sync.receive_output(timeout=5))["body"])
            self.assertEqual(start["status"], 200)
            self.assertEqual(body["account_data"]["events"][0]["type"], "m.wake")


class InheritedContextTests(TransactionTestCase):
    async def test_a_request_started_from_inside_another_runs_after_it_ended(self) -> None:
        """uvicorn starts a pipelined request's task from within the previous request's
        send(), so the new task inherits the previous request's context, whose thread
        context has ended by the time the new request runs."""
        from matrixhs.asgi_handler import request_threads

        started = asyncio.Event()
        later: list[asyncio.Task[int]] = []

        async def next_request() -> int:
            await started.wait()
            return await request_threads.run(threading.get_ident)

        async with request_threads.lend():
            later.append(asyncio.get_running_loop().create_task(next_request()))
        started.set()
        self.assertIsInstance(await later[0], int)
