"""The scaled mode: two `serve` processes on one PostgreSQL and one Redis. A message sent
through one process wakes a /sync waiting on the other (the wake-up crosses processes
through the Redis channel layer). Runs when DATABASE_URL (PostgreSQL) and REDIS_URL are
set, as in the second pass of .ci/run."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.server import RunningServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres")
        or not os.environ.get("REDIS_URL"),
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: the scaled mode",
    ),
]


def _register(base: str, name: str) -> str:
    body = {"username": name, "password": "pw", "auth": {"type": "m.login.dummy"}}
    response = httpx.post(f"{base}/_matrix/client/v3/register", json=body)
    response.raise_for_status()
    return str(response.json()["access_token"])


def test_a_send_on_one_process_wakes_a_sync_on_the_other(tmp_path: Path) -> None:
    first = RunningServer(tmp_path).start()
    second = first.sibling().start()
    try:
        alice = {"Authorization": f"Bearer {_register(first.base_url, 'alice')}"}
        bob = {"Authorization": f"Bearer {_register(second.base_url, 'bob')}"}
        room = httpx.post(
            f"{first.base_url}/_matrix/client/v3/createRoom",
            json={"preset": "public_chat"},
            headers=alice,
        ).json()["room_id"]
        httpx.post(
            f"{second.base_url}/_matrix/client/v3/join/{quote(room)}", json={}, headers=bob
        ).raise_for_status()
        token = httpx.get(f"{second.base_url}/_matrix/client/v3/sync", headers=bob).json()[
            "next_batch"
        ]

        result: dict[str, object] = {}

        def wait_on_second() -> None:
            started = time.monotonic()
            response = httpx.get(
                f"{second.base_url}/_matrix/client/v3/sync",
                params={"since": token, "timeout": 20000},
                headers=bob,
                timeout=30,
            )
            result["elapsed"] = time.monotonic() - started
            result["body"] = response.json()

        waiter = threading.Thread(target=wait_on_second)
        waiter.start()
        time.sleep(1.0)  # the sync is waiting on the second process
        sent_at = time.monotonic()
        httpx.put(
            f"{first.base_url}/_matrix/client/v3/rooms/{quote(room)}/send/m.room.message/1",
            json={"msgtype": "m.text", "body": "across processes"},
            headers=alice,
        ).raise_for_status()
        waiter.join(timeout=25)
        body = result["body"]
        events = body["rooms"]["join"][room]["timeline"]["events"]  # type: ignore[index]
        assert events[-1]["content"]["body"] == "across processes"
        assert time.monotonic() - sent_at < 5, "woken by the other process, not by the timeout"
        assert result["elapsed"] < 15  # type: ignore[operator]
    finally:
        second.stop()
        first.stop()
