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
from django.test import TransactionTestCase

from accounts.actions.devices import do_login_device
from accounts.actions.tokens import issue_tokens
from accounts.actions.users import do_register_user
from accounts.models import User
from matrixhs.asgi import application
from matrixhs.testing import assert_conforms
from rooms.actions.create import do_create_room
from rooms.actions.membership import do_join
from rooms.events import create_and_send_event


def _user(name: str) -> tuple[User, str]:
    user = do_register_user(name, "pw")
    token = issue_tokens(user, do_login_device(user, None, None), False)["access_token"]
    return user, token


class LongPollTests(TransactionTestCase):
    def setUp(self) -> None:
        self.alice, self.alice_token = _user("alice")
        self.bob, self.bob_token = _user("bob")
        self.room = do_create_room(self.alice, {"preset": "public_chat"})
        do_join(self.bob, self.room)

    def communicator(
        self, query: str, token: str | None = None, method: str = "GET"
    ) -> ApplicationCommunicator:
        headers = [(b"authorization", f"Bearer {token or self.bob_token}".encode())]
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": "/_matrix/client/v3/sync",
            "raw_path": b"/_matrix/client/v3/sync",
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
