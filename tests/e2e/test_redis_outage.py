"""A Redis outage under a live server (scaled mode, on a private redis-server): requests
keep being answered, rate limits count per process, /sync polls the database, one
warning is logged for the whole outage, and the server uses Redis again once it is back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.server import RunningServer, free_port
from tests.e2e.services import PrivateRedis

pytestmark = [pytest.mark.e2e, pytest.mark.outage]

SLIDING = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"


@pytest.fixture
def redis_server() -> Iterator[PrivateRedis]:
    private = PrivateRedis().start()
    try:
        yield private
    finally:
        private.stop()


def _register(base: str, name: str) -> dict[str, str]:
    body = {"username": name, "password": "pw", "auth": {"type": "m.login.dummy"}}
    response = httpx.post(f"{base}/_matrix/client/v3/register", json=body)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


class Waiter(threading.Thread):
    """A long-polling /sync of bob, in the background."""

    def __init__(self, base: str, headers: dict[str, str], since: str) -> None:
        super().__init__()
        self.args_ = (base, headers, since)
        self.status = 0
        self.body: Any = None
        self.returned_at = 0.0

    def run(self) -> None:
        base, headers, since = self.args_
        response = httpx.get(
            f"{base}/_matrix/client/v3/sync",
            params={"since": since, "timeout": 15000},
            headers=headers,
            timeout=30,
        )
        self.returned_at = time.monotonic()
        self.status = response.status_code
        self.body = response.json()

    def messages(self, room: str) -> list[str]:
        events = self.body.get("rooms", {}).get("join", {}).get(room, {}).get("timeline", {})
        return [e["content"].get("body") for e in events.get("events", [])]


def test_requests_survive_a_redis_outage_and_redis_is_used_again(
    tmp_path: Path, redis_server: PrivateRedis
) -> None:
    metrics_port = free_port()
    server = RunningServer(
        tmp_path,
        MATRIXHS_METRICS_BIND=f"127.0.0.1:{metrics_port}",
        REDIS_URL=redis_server.url,
        MATRIXHS_RATELIMIT_ENABLED="true",
        MATRIXHS_RATELIMIT_CLIENT="10000/60",
        MATRIXHS_RATELIMIT_AUTH="1000/60",
        MATRIXHS_RATELIMIT_SYNC="10000/60",
    ).start()
    try:
        base = server.base_url
        alice, bob = _register(base, "alice"), _register(base, "bob")
        room = httpx.post(
            f"{base}/_matrix/client/v3/createRoom", json={"preset": "public_chat"}, headers=alice
        ).json()["room_id"]
        room_path = f"{base}/_matrix/client/v3/rooms/{quote(room)}"
        httpx.post(f"{base}/_matrix/client/v3/join/{quote(room)}", json={}, headers=bob)
        since = httpx.get(f"{base}/_matrix/client/v3/sync", headers=bob).json()["next_batch"]
        assert redis_server.client().keys("*rl:*"), "rate limits are counted in Redis"

        waiter = Waiter(base, bob, since)
        waiter.start()
        time.sleep(0.5)  # bob's /sync waits on the channel layer
        redis_server.stop()

        sent_at = time.monotonic()
        sent = httpx.put(
            f"{room_path}/send/m.room.message/1",
            json={"msgtype": "m.text", "body": "during the outage"},
            headers=alice,
        )
        assert sent.status_code == 200, sent.text
        waiter.join(timeout=20)
        assert waiter.status == 200
        assert "during the outage" in waiter.messages(room)
        assert waiter.returned_at - sent_at < 5, "the waiting sync polled the database"

        typing = httpx.put(
            f"{room_path}/typing/{quote('@alice:' + server.server_name)}",
            json={"typing": True, "timeout": 10000},
            headers=alice,
        )
        assert typing.status_code == 200, typing.text
        for _ in range(3):
            synced = httpx.get(
                f"{base}/_matrix/client/v3/sync",
                params={"since": since, "timeout": 500},
                headers=bob,
                timeout=10,
            )
            assert synced.status_code == 200, synced.text
        sliding = httpx.post(
            f"{base}{SLIDING}",
            json={"lists": {"all": {"ranges": [[0, 10]], "timeline_limit": 1}}},
            headers=bob,
        )
        assert sliding.status_code == 200, sliding.text
        pos = sliding.json()["pos"]
        sliding_wait = httpx.post(
            f"{base}{SLIDING}",
            params={"pos": pos, "timeout": 500},
            json={"lists": {"all": {"ranges": [[0, 10]], "timeline_limit": 1}}},
            headers=bob,
            timeout=10,
        )
        assert sliding_wait.status_code == 200, sliding_wait.text

        log = server.log_path.read_text()
        assert log.count("redis is unreachable") == 1, log
        assert "Traceback" not in log, log
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert 'matrixhs_dependency_up{dependency="redis"} 0.0' in scraped
        assert 'matrixhs_dependency_outages_total{dependency="redis"} 1.0' in scraped

        redis_server.start()  # on the same port: the server finds it again
        time.sleep(1.5)  # past the probe interval
        since = synced.json()["next_batch"]
        waiter = Waiter(base, bob, since)
        waiter.start()
        time.sleep(1.0)
        sent_at = time.monotonic()
        httpx.put(
            f"{room_path}/send/m.room.message/2",
            json={"msgtype": "m.text", "body": "after the outage"},
            headers=alice,
        ).raise_for_status()
        waiter.join(timeout=20)
        assert waiter.status == 200
        assert "after the outage" in waiter.messages(room)
        assert waiter.returned_at - sent_at < 0.9, "woken through Redis, not by polling"
        assert redis_server.client().keys("*rl:*"), "rate limits are counted in Redis again"
        log = server.log_path.read_text()
        assert "redis is back" in log
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert 'matrixhs_dependency_up{dependency="redis"} 1.0' in scraped
        assert log.count("redis is unreachable") == 1
        assert "Traceback" not in log, log
    finally:
        server.stop()
