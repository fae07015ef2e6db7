"""The /sync long-poll through the ASGI application: it waits, wakes on a write, times
out, and lets go of a client that disconnects. (TransactionTestCase: the long-poll reads
on request threads, which see committed data only.)"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core.cache import cache
from django.test import TransactionTestCase, override_settings

from accounts.actions.devices import do_login_device
from accounts.actions.tokens import issue_tokens
from accounts.actions.users import do_deactivate_user, do_register_user
from accounts.models import User
from matrixhs.asgi import application
from matrixhs.testing import asgi_request, assert_conforms
from rooms.actions.create import do_create_room
from rooms.actions.membership import do_join
from rooms.events import create_and_send_event

SYNC = "/_matrix/client/v3/sync"
SLIDING = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
LOGOUT = "/_matrix/client/v3/logout"


def _user(name: str) -> tuple[User, str]:
    user = do_register_user(name, "pw")
    token = issue_tokens(user, do_login_device(user, None, None), False)["access_token"]
    return user, token


class LongPollTestCase(TransactionTestCase):
    def setUp(self) -> None:
        self.alice, self.alice_token = _user("alice")
        self.bob, self.bob_token = _user("bob")
        self.room = do_create_room(self.alice, {"preset": "public_chat"})
        do_join(self.bob, self.room)

    def communicator(
        self, query: str, token: str | None = None, method: str = "GET", path: str = SYNC
    ) -> ApplicationCommunicator:
        headers = [(b"authorization", f"Bearer {token or self.bob_token}".encode())]
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": headers,
            "client": ("127.0.0.1", 9),
            "server": ("127.0.0.1", 8008),
        }
        return ApplicationCommunicator(application, scope)

    async def request(self, query: str, **kw: Any) -> tuple[int, Any, ApplicationCommunicator]:
        comm = self.communicator(query, **kw)
        await comm.send_input({"type": "http.request", "body": b""})
        start = await comm.receive_output(timeout=10)
        body = await comm.receive_output(timeout=10)
        return start["status"], json.loads(body["body"]), comm

    async def initial_token(self) -> str:
        status, body, _ = await self.request("")
        self.assertEqual(status, 200)
        assert_conforms("GET", "/_matrix/client/v3/sync", status, body)
        return str(body["next_batch"])


class LongPollTests(LongPollTestCase):
    async def test_a_waiting_sync_wakes_on_a_message(self) -> None:
        token = await self.initial_token()
        comm = self.communicator(f"since={token}&timeout=10000")
        await comm.send_input({"type": "http.request", "body": b""})
        self.assertTrue(await comm.receive_nothing(timeout=0.3))  # it waits
        started = time.monotonic()
        await sync_to_async(create_and_send_event)(
            self.alice.user_id, self.room, "m.room.message", {"msgtype": "m.text", "body": "wake"}
        )
        response = await comm.receive_output(timeout=5)
        body = json.loads((await comm.receive_output(timeout=5))["body"])
        self.assertEqual(response["status"], 200)
        self.assertLess(time.monotonic() - started, 2)
        events = body["rooms"]["join"][self.room]["timeline"]["events"]
        self.assertEqual(events[-1]["content"]["body"], "wake")

    async def test_timeout_answers_empty(self) -> None:
        token = await self.initial_token()
        started = time.monotonic()
        status, body, _ = await self.request(f"since={token}&timeout=400")
        self.assertGreaterEqual(time.monotonic() - started, 0.35)
        self.assertEqual((status, body.get("rooms")), (200, {}))

    async def test_a_client_that_goes_away_is_let_go(self) -> None:
        token = await self.initial_token()
        comm = self.communicator(f"since={token}&timeout=10000")
        await comm.send_input({"type": "http.request", "body": b""})
        await asyncio.sleep(0.2)
        await comm.send_input({"type": "http.disconnect"})
        await comm.wait(timeout=3)  # the application returns without answering

    async def test_errors_are_matrix_errors_with_cors(self) -> None:
        comm = self.communicator("", token="mhat_nope")
        await comm.send_input({"type": "http.request", "body": b""})
        start = await comm.receive_output(timeout=5)
        body = json.loads((await comm.receive_output(timeout=5))["body"])
        self.assertEqual((start["status"], body["errcode"]), (401, "M_UNKNOWN_TOKEN"))
        self.assertIn((b"Access-Control-Allow-Origin", b"*"), start["headers"])
        status, body, _ = await self.request("since=nonsense")
        self.assertEqual((status, body["errcode"]), (400, "M_INVALID_PARAM"))
        status, body, _ = await self.request("", method="POST")
        self.assertEqual((status, body["errcode"]), (405, "M_UNRECOGNIZED"))

    async def test_options_for_browsers(self) -> None:
        status, body, _ = await self.request("", method="OPTIONS")
        self.assertEqual((status, body), (200, {}))


class SessionEndTests(LongPollTestCase):
    """A waiting sync ends with its session: logout and deactivation wake it, and it
    answers 401 M_UNKNOWN_TOKEN instead of serving the ended session until its timeout."""

    async def assert_ends_unauthorised(self, comm: ApplicationCommunicator) -> None:
        start = await comm.receive_output(timeout=5)
        body = json.loads((await comm.receive_output(timeout=5))["body"])
        self.assertEqual((start["status"], body["errcode"]), (401, "M_UNKNOWN_TOKEN"))

    async def waiting_sync(self) -> ApplicationCommunicator:
        token = await self.initial_token()
        comm = self.communicator(f"since={token}&timeout=20000")
        await comm.send_input({"type": "http.request", "body": b""})
        self.assertTrue(await comm.receive_nothing(timeout=0.3))  # it waits
        return comm

    async def test_logout_ends_a_waiting_sync(self) -> None:
        comm = await self.waiting_sync()
        auth = {"Authorization": f"Bearer {self.bob_token}"}
        self.assertEqual((await asgi_request("POST", LOGOUT, {}, headers=auth)).status_code, 200)
        await self.assert_ends_unauthorised(comm)

    async def test_another_users_logout_does_not(self) -> None:
        comm = await self.waiting_sync()
        auth = {"Authorization": f"Bearer {self.alice_token}"}
        self.assertEqual((await asgi_request("POST", LOGOUT, {}, headers=auth)).status_code, 200)
        self.assertTrue(await comm.receive_nothing(timeout=0.5))
        await comm.send_input({"type": "http.disconnect"})
        await comm.wait(timeout=3)

    async def test_deactivation_ends_a_waiting_sync(self) -> None:
        comm = await self.waiting_sync()
        await sync_to_async(do_deactivate_user)(self.bob)
        await self.assert_ends_unauthorised(comm)

    async def test_logout_ends_a_waiting_sliding_sync(self) -> None:
        body = json.dumps({"lists": {"all": {"ranges": [[0, 9]], "timeline_limit": 1}}})
        first = self.communicator("", method="POST", path=SLIDING)
        await first.send_input({"type": "http.request", "body": body.encode()})
        self.assertEqual((await first.receive_output(timeout=10))["status"], 200)
        pos = json.loads((await first.receive_output(timeout=10))["body"])["pos"]
        comm = self.communicator(f"pos={pos}&timeout=20000", method="POST", path=SLIDING)
        await comm.send_input({"type": "http.request", "body": body.encode()})
        self.assertTrue(await comm.receive_nothing(timeout=0.3))
        auth = {"Authorization": f"Bearer {self.bob_token}"}
        self.assertEqual((await asgi_request("POST", LOGOUT, {}, headers=auth)).status_code, 200)
        await self.assert_ends_unauthorised(comm)


@override_settings(
    MATRIXHS_RATELIMIT_ENABLED=True,
    MATRIXHS_RATELIMITS={"client": (100, 60), "auth": (100, 60), "sync": (3, 60)},
)
class SyncRateLimitTests(LongPollTestCase):
    async def test_syncs_of_a_user_are_rate_limited(self) -> None:
        await sync_to_async(cache.clear)()
        statuses = [(await self.request(""))[0] for _ in range(2)]
        sliding = self.communicator("", method="POST", path=SLIDING)
        await sliding.send_input({"type": "http.request", "body": b"{}"})
        statuses.append((await sliding.receive_output(timeout=10))["status"])
        await sliding.receive_output(timeout=10)
        status, body, _ = await self.request("")
        self.assertEqual([*statuses, status], [200, 200, 200, 429])
        self.assertEqual(body["errcode"], "M_LIMIT_EXCEEDED")
        self.assertGreater(body["retry_after_ms"], 0)
        status, _, _ = await self.request("", token=self.alice_token)  # per user
        self.assertEqual(status, 200)
