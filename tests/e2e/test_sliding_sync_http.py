"""A sliding sync client session over plain HTTP, as MSC4186 describes it, against the real
server: the room list comes most recently active first, a long-poll wakes on a new
message, and the to_device and e2ee extensions deliver."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.server import RunningServer

pytestmark = pytest.mark.e2e
SLIDING = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"


def _register(server: RunningServer, name: str) -> tuple[dict[str, str], str, str]:
    body = {"username": name, "password": "pw", "auth": {"type": "m.login.dummy"}}
    answer = httpx.post(f"{server.base_url}/_matrix/client/v3/register", json=body).json()
    return (
        {"Authorization": f"Bearer {answer['access_token']}"},
        answer["user_id"],
        answer["device_id"],
    )


def test_sliding_sync_session(server: RunningServer) -> None:
    base = server.base_url
    versions = httpx.get(f"{base}/_matrix/client/versions").json()
    assert versions["unstable_features"]["org.matrix.simplified_msc3575"] is True
    alice, alice_id, _ = _register(server, "slider")
    bob, bob_id, bob_device = _register(server, "glider")
    rooms = []
    for name in ("older", "newer"):
        room = httpx.post(
            f"{base}/_matrix/client/v3/createRoom",
            headers=alice,
            json={"name": name, "invite": [bob_id]},
        ).json()["room_id"]
        httpx.post(f"{base}/_matrix/client/v3/join/{quote(room)}", headers=bob, json={})
        rooms.append(room)
    older, newer = rooms
    request: dict[str, Any] = {
        "conn_id": "main",
        "lists": {
            "all": {
                "ranges": [[0, 19]],
                "timeline_limit": 1,
                "required_state": [["m.room.name", ""]],
            }
        },
        "extensions": {"to_device": {"enabled": True}, "e2ee": {"enabled": True}},
    }
    first = httpx.post(f"{base}{SLIDING}", headers=bob, json=request).json()
    assert first["lists"]["all"]["count"] == 2
    stamps = {room: first["rooms"][room]["bump_stamp"] for room in rooms}
    assert stamps[newer] > stamps[older]
    assert first["rooms"][newer]["name"] == "newer"
    assert "device_one_time_keys_count" in first["extensions"]["e2ee"]

    result: dict[str, Any] = {}

    def long_poll() -> None:
        started = time.monotonic()
        result["body"] = httpx.post(
            f"{base}{SLIDING}",
            headers=bob,
            json=request,
            timeout=30,
            params={"pos": first["pos"], "timeout": 20000},
        ).json()
        result["elapsed"] = time.monotonic() - started

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(0.5)
    httpx.put(
        f"{base}/_matrix/client/v3/rooms/{quote(older)}/send/m.room.message/1",
        headers=alice,
        json={"msgtype": "m.text", "body": "bump the old room"},
    ).raise_for_status()
    poller.join(timeout=25)
    woken = result["body"]
    assert result["elapsed"] < 10
    assert list(woken["rooms"]) == [older]
    assert woken["rooms"][older]["timeline"][-1]["content"]["body"] == "bump the old room"
    assert woken["rooms"][older]["bump_stamp"] > stamps[newer]

    httpx.put(
        f"{base}/_matrix/client/v3/sendToDevice/m.room_key_request/t1",
        headers=alice,
        json={
            "messages": {
                bob_id: {
                    bob_device: {
                        "action": "cancellation",
                        "request_id": "r1",
                        "requesting_device_id": "X",
                    }
                }
            }
        },
    ).raise_for_status()
    delivered = httpx.post(
        f"{base}{SLIDING}", headers=bob, json=request, params={"pos": woken["pos"], "timeout": 5000}
    ).json()
    events = delivered["extensions"]["to_device"]["events"]
    assert events and events[0]["sender"] == alice_id
