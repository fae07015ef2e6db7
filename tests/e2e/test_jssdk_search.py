"""matrix-js-sdk's server-side search (tests/e2e/js/search.mjs) against the real server
process: searchRoomEvents, then backPaginateRoomEventsSearch through every page, with the
context the SDK asks for (one event each side)."""

from __future__ import annotations

import json
import os
import subprocess
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.server import RunningServer
from tests.e2e.test_jssdk import JS_DIR, node_binary, register

pytestmark = pytest.mark.e2e


def test_jssdk_search_pages_through_every_result(server: RunningServer) -> None:
    node = node_binary()
    base = server.base_url
    suffix = os.urandom(3).hex()
    alice = register(base, f"alice{suffix}")
    auth = {"Authorization": f"Bearer {alice['access_token']}"}
    created = httpx.post(
        f"{base}/_matrix/client/v3/createRoom", headers=auth, json={"name": "Nuts"}, timeout=30
    )
    assert created.status_code == 200, created.text
    room_id = created.json()["room_id"]
    send = f"{base}/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message"
    bodies = []
    for i in range(25):
        body = f"walnut {i}" if i % 2 == 0 else f"chatter {i}"
        sent = httpx.put(
            f"{send}/s{i}", headers=auth, timeout=30, json={"msgtype": "m.text", "body": body}
        )
        assert sent.status_code == 200, sent.text
        bodies.append(body)

    done = subprocess.run(
        [
            str(node),
            str(JS_DIR / "search.mjs"),
            "--base-url",
            base,
            "--user",
            alice["user_id"],
            "--password",
            f"alice{suffix} password",
            "--term",
            "walnut",
        ],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["ok"] is True, report
    walnuts = [b for b in bodies if b.startswith("walnut")]
    found = [r["body"] for r in report["results"]]
    assert found == list(reversed(walnuts))  # order "recent", no repeats across pages
    assert report["pages"] == 2  # the default page of 10, then the rest
    assert report["count"] == len(walnuts)
    assert report["highlights"] == ["walnut"]
    by_body = {r["body"]: r for r in report["results"]}
    assert by_body["walnut 12"]["before"] == ["chatter 11"]
    assert by_body["walnut 12"]["after"] == ["chatter 13"]
    assert {r["room_id"] for r in report["results"]} == {room_id}
