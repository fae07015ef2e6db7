"""The scaled mode: two `serve` processes on one PostgreSQL and one Redis. A message sent
through one process wakes a /sync waiting on the other (the wake-up crosses processes
through the Redis channel layer); with a Celery worker and beat beside them, federation
and push deliveries go through the worker and survive it being killed. Runs when
DATABASE_URL (PostgreSQL) and REDIS_URL are set, as in the second pass of .ci/run."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse, urlunparse

import httpx
import pytest

from tests.e2e.peer import Peer, self_signed_certificate
from tests.e2e.server import ROOT, RunningServer, federating_instance, free_port

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


def _room_across(
    first: RunningServer, second: RunningServer
) -> tuple[str, dict[str, str], dict[str, str]]:
    """alice (on the first process) creates a public room, bob (on the second) joins it:
    the room ID and their Authorization headers."""
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
    return str(room), alice, bob


def test_a_send_on_one_process_wakes_a_sync_on_the_other(tmp_path: Path) -> None:
    first = RunningServer(tmp_path).start()
    second = first.sibling().start()
    try:
        room, alice, bob = _room_across(first, second)
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


class PushGateway:
    """A push gateway on 127.0.0.1 recording the notifications it is sent."""

    def __init__(self) -> None:
        self.port = free_port()
        self.notifications: list[dict[str, Any]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                gateway.notifications.append(json.loads(self.rfile.read(length)))
                body = b'{"rejected": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def bodies(self) -> list[str]:
        return [n["notification"].get("content", {}).get("body", "") for n in self.notifications]


def _celery(server: RunningServer, *args: str) -> subprocess.Popen[bytes]:
    log = (server.data_dir / f"celery-{args[0]}-{secrets.token_hex(2)}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "matrixhs", *args, "--loglevel=info"],
        env=server.env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _wait(what: str, done: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.1)


def _private_redis_url() -> str:
    """The CI's Redis, on a database of this test's own (its Celery queue and channels
    are nobody else's)."""
    parsed = urlparse(os.environ["REDIS_URL"])
    return urlunparse(parsed._replace(path="/13"))


def test_worker_and_beat_deliver_and_a_killed_worker_loses_nothing(tmp_path: Path) -> None:
    """Two `serve` processes, a Celery worker and beat: a message sent on one process is
    delivered to another server and to a push gateway by the worker; the worker killed
    in the middle of a send loses nothing (the next worker resends the transaction)."""
    certs = self_signed_certificate(tmp_path / "certs")
    first = federating_instance(
        tmp_path / "hs",
        certs,
        REDIS_URL=_private_redis_url(),
        MATRIXHS_QUEUE_LEASE_S="3",
        MATRIXHS_PRESENCE_ENABLED="false",
        MATRIXHS_PUSH_ALLOW_HTTP="true",
        MATRIXHS_OUTBOUND_IP_ALLOWLIST="127.0.0.0/8",
    )
    (tmp_path / "hs").mkdir()
    first.start()
    second = first.sibling()
    second.env.pop("MATRIXHS_FEDERATION_BIND")  # one TLS listener; the other behind a proxy
    second.start()
    worker = _celery(first, "worker", "--pool=threads", "--concurrency=4")
    beat = _celery(first, "beat", f"--schedule={tmp_path / 'beat-schedule'}")
    peer = Peer(certs)
    gateway = PushGateway()
    try:
        room, alice, bob = _room_across(first, second)
        pusher = {
            "kind": "http",
            "app_id": "org.example.test",
            "pushkey": "bob-phone",
            "app_display_name": "Test",
            "device_display_name": "Phone",
            "lang": "en",
            "data": {"url": f"http://127.0.0.1:{gateway.port}/_matrix/push/v1/notify"},
        }
        httpx.post(
            f"{second.base_url}/_matrix/client/v3/pushers/set", json=pusher, headers=bob
        ).raise_for_status()
        peer.join(first.server_name, room)

        def send(text: str) -> None:
            txn = secrets.token_hex(4)
            httpx.put(
                f"{first.base_url}/_matrix/client/v3/rooms/{quote(room)}/send/m.room.message/{txn}",
                json={"msgtype": "m.text", "body": text},
                headers=alice,
            ).raise_for_status()

        send("through the worker")
        _wait("the other server", lambda: "through the worker" in peer.received)
        _wait("the push gateway", lambda: "through the worker" in gateway.bodies())

        peer.hold.set()  # the other server hangs: the worker's send is in flight
        send("while the worker dies")
        assert peer.held.wait(30), "the worker never sent"
        held_txn = peer.transactions[-1]
        worker.kill()
        worker.wait()
        peer.hold.clear()
        peer.release.set()
        worker = _celery(first, "worker", "--pool=threads", "--concurrency=4")
        _wait("the resend", lambda: "while the worker dies" in peer.received, 90)
        # The same transaction, sent again (the other server may have read it already).
        assert peer.transactions[-1] == held_txn, peer.transactions
    finally:
        for process in (worker, beat):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        peer.close()
        gateway.httpd.shutdown()
        second.stop()
        first.stop()
