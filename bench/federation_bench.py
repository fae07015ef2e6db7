"""Federation with Synapse, measured: how long a message takes from a client's send on
one server to a long-polling client's /sync on the other (p50/p99 over N messages, one
at a time), and how fast a burst of M messages sent on one side is all seen on the other
(messages/s), for each pair of servers:

    matrixhs -> Synapse A, Synapse A -> matrixhs, and Synapse A -> Synapse B beside them.

Synapse A and B come from the shared synapse-pair script (TLS from its CA, 127.0.0.1);
this server runs as `manage.py serve` with a TLS federation listener, as the interop
tests run it. Usage:

    .venv/bin/python bench/federation_bench.py [--messages 100] [--burst 200]
        [--pair ../shared/interop/synapse-pair]

It starts Synapse A and B (and stops those it started) and prints one table.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.server import federating_instance  # noqa: E402

TIMELINE_FILTER = '{"room": {"timeline": {"limit": 1000}}}'
SIDES = {
    "synapse-a": ("http://127.0.0.1:18118", "localhost:18448"),
    "synapse-b": ("http://127.0.0.1:28118", "localhost:28448"),
}


class Client:
    def __init__(self, base_url: str, name: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=70)
        body = {"username": name, "password": "bench-Pass-1", "auth": {"type": "m.login.dummy"}}
        answer = self.http.post("/_matrix/client/v3/register", json=body)
        answer.raise_for_status()
        self.user_id = answer.json()["user_id"]
        self.http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        self.since: str | None = None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.http.request(method, f"/_matrix/client/v3{path}", json=body)
        assert answer.status_code == 200, f"{method} {path}: {answer.text}"
        return answer.json()

    def sync(self, timeout_ms: int = 10_000) -> dict[str, Any]:
        # A timeline long enough for a burst (the default of 10 would leave gaps).
        params: dict[str, Any] = {"timeout": timeout_ms, "filter": TIMELINE_FILTER}
        if self.since:
            params["since"] = self.since
        answer = self.http.get("/_matrix/client/v3/sync", params=params)
        answer.raise_for_status()
        body = answer.json()
        self.since = body["next_batch"]
        return body

    def send(self, room_id: str, text: str) -> None:
        path = f"/rooms/{quote(room_id)}/send/m.room.message/{secrets.token_hex(6)}"
        self.call("PUT", path, {"msgtype": "m.text", "body": text})


def bodies(sync: dict[str, Any], room_id: str) -> list[str]:
    room = sync.get("rooms", {}).get("join", {}).get(room_id, {})
    return [
        e["content"].get("body", "")
        for e in room.get("timeline", {}).get("events", [])
        if e.get("type") == "m.room.message"
    ]


def shared_room(sender: Client, receiver: Client, wait_s: float = 120) -> str:
    room_id = str(sender.call("POST", "/createRoom", {"preset": "public_chat"})["room_id"])
    sender.call("POST", f"/rooms/{quote(room_id)}/invite", {"user_id": receiver.user_id})
    deadline = time.monotonic() + wait_s
    while True:
        answer = receiver.http.post(f"/_matrix/client/v3/join/{quote(room_id)}", json={})
        if answer.status_code == 200:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"could not join {room_id}: {answer.text}")
        time.sleep(1)
    receiver.sync(0)
    return room_id


def latency(sender: Client, receiver: Client, room_id: str, count: int) -> list[float]:
    """Seconds from each send to the receiver's long-poll returning it, one at a time."""
    found: list[float] = []
    for n in range(count):
        text = f"latency {n} {secrets.token_hex(3)}"
        result: dict[str, float] = {}

        def wait(text: str = text, result: dict[str, float] = result) -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if text in bodies(receiver.sync(), room_id):
                    result["at"] = time.perf_counter()
                    return

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.05)  # the long-poll is waiting
        started = time.perf_counter()
        sender.send(room_id, text)
        waiter.join()
        if "at" not in result:
            raise RuntimeError(f"{text!r} never arrived")
        found.append(result["at"] - started)
    return found


def burst(sender: Client, receiver: Client, room_id: str, count: int) -> tuple[float, int]:
    """Messages/s from the first send until the receiver's client has all of them, and
    how many of them it had to page back for (/messages) rather than got in /sync.

    A server that receives events faster than it processes them may drop the middle of
    its backlog and fetch it later (Synapse prunes its inbound queue for a room past 100
    events): the client then sees a gap in /sync and fills it by paging back, which
    fetches the events from the sending server (backfill)."""
    texts = [f"burst {n} {secrets.token_hex(3)}" for n in range(count)]
    started = time.perf_counter()
    for text in texts:
        sender.send(room_id, text)
    missing = set(texts)
    deadline = time.monotonic() + 600
    while texts[-1] in missing and time.monotonic() < deadline:
        missing -= set(bodies(receiver.sync(), room_id))
    live = count - len(missing)
    token = None
    while missing and time.monotonic() < deadline:
        query = f"?dir=b&limit=100{f'&from={quote(token)}' if token else ''}"
        page = receiver.call("GET", f"/rooms/{quote(room_id)}/messages{query}")
        missing -= {e["content"].get("body", "") for e in page["chunk"]}
        token = page.get("end")
        if token is None:
            time.sleep(0.5)  # the start of the room: ask again from the top
    if missing:
        raise RuntimeError(f"{len(missing)} messages never arrived")
    return count / (time.perf_counter() - started), count - live


def pair(script: Path, data: Path, *args: str) -> str:
    env = {**os.environ, "SYNAPSE_PAIR_DATA": str(data), "FED_DB": "sqlite"}
    done = subprocess.run(
        [str(script), *args], env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"synapse-pair {' '.join(args)}: {done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument(
        "--pair",
        type=Path,
        default=Path(
            os.environ.get("INTEROP_SYNAPSE_PAIR", ROOT.parent / "shared/interop/synapse-pair")
        ),
    )
    args = parser.parse_args()
    data = ROOT / ".synapse-pair"
    status = pair(args.pair, data, "status")
    started = [side for side in ("a", "b") if f"{side}: running" not in status]
    for side in started:
        pair(args.pair, data, "up", side)
    work = Path(tempfile.mkdtemp(prefix="fedbench-"))
    certs = work / "certs"
    pair(args.pair, data, "cert", str(certs))
    server = federating_instance(work / "hs", certs, MATRIXHS_PRESENCE_ENABLED="false")
    (work / "hs").mkdir()
    server.start()
    try:
        suffix = secrets.token_hex(3)
        ours = Client(server.base_url, f"bench{suffix}")
        a1 = Client(SIDES["synapse-a"][0], f"benchA{suffix}")
        a2 = Client(SIDES["synapse-a"][0], f"benchA2{suffix}")
        b = Client(SIDES["synapse-b"][0], f"benchB{suffix}")
        rows = []
        for label, sender, receiver in (
            ("matrixhs -> Synapse A", ours, a1),
            ("Synapse A -> matrixhs", a2, ours),
            ("Synapse A -> Synapse B", a2, b),
        ):
            room_id = shared_room(sender, receiver)
            times = latency(sender, receiver, room_id, args.messages)
            rate, paged = burst(sender, receiver, room_id, args.burst)
            cuts = statistics.quantiles(times, n=100)
            rows.append((label, cuts[49] * 1000, cuts[98] * 1000, rate, paged))
        print(f"{'path':<24} {'p50 ms':>8} {'p99 ms':>8} {'burst msg/s':>12} {'paged back':>11}")
        for label, p50, p99, rate, paged in rows:
            print(f"{label:<24} {p50:8.1f} {p99:8.1f} {rate:12.1f} {paged:>11}")
        print(
            f"({args.messages} messages one at a time, then a burst of {args.burst}; "
            "'paged back': burst messages the receiving client got from /messages, not /sync)"
        )
    finally:
        server.stop()
        for side in started:
            pair(args.pair, data, "down", side)


if __name__ == "__main__":
    main()
