"""Send throughput and /messages latency, this homeserver beside Synapse.

    .venv/bin/python bench/room_bench.py \\
        --database-url postgres://postgres@127.0.0.1:5432/postgres \\
        --synapse-python /tmp/synvenv/bin/python [--senders 20 --messages 50]

For each server: registers ``--senders`` users, puts them in one public room, then has
them all send messages at once (each its next message as soon as the previous one is
answered) and reports events/s with p50/p99 latency; then reads the room with
GET /messages (limit 50, paging back) and reports p50/p99 latency. Without
``--synapse-python`` only this server runs; without ``--database-url`` it runs on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.servers import Synapse, matrixhs


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def register(client: httpx.AsyncClient, name: str) -> str:
    body = {
        "username": name,
        "password": f"{name}-password",
        "auth": {"type": "m.login.dummy"},
        "inhibit_login": False,
    }
    response = await client.post("/_matrix/client/v3/register", json=body)
    response.raise_for_status()
    return str(response.json()["access_token"])


async def setup_room(
    client: httpx.AsyncClient, senders: int, prefix: str = "user"
) -> tuple[str, list[str]]:
    tokens = await asyncio.gather(*(register(client, f"{prefix}{i}") for i in range(senders)))
    created = await client.post(
        "/_matrix/client/v3/createRoom",
        json={"preset": "public_chat", "name": "bench"},
        headers={"Authorization": f"Bearer {tokens[0]}"},
    )
    created.raise_for_status()
    room_id = created.json()["room_id"]
    for token in tokens[1:]:
        joined = await client.post(
            f"/_matrix/client/v3/join/{quote(room_id)}",
            json={},
            headers={"Authorization": f"Bearer {token}"},
        )
        joined.raise_for_status()
    return room_id, list(tokens)


async def sender(
    client: httpx.AsyncClient, room_id: str, token: str, n: int, tag: str, latencies: list[float]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for i in range(n):
        url = f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/{tag}-{i}"
        start = time.perf_counter()
        response = await client.put(
            url, json={"msgtype": "m.text", "body": f"message {i}"}, headers=headers
        )
        latencies.append(time.perf_counter() - start)
        response.raise_for_status()


async def bench_send(
    client: httpx.AsyncClient, room_ids: list[str], tokens: list[str], n: int
) -> dict[str, float]:
    """Each of ``tokens`` sends ``n`` messages into the room of the same index in
    ``room_ids``, all senders at once (after 3 messages each to warm up)."""
    pairs = list(zip(room_ids, tokens, strict=True))
    warm: list[float] = []
    await asyncio.gather(
        *(sender(client, r, t, 3, f"w{i}", warm) for i, (r, t) in enumerate(pairs))
    )
    latencies: list[float] = []
    start = time.perf_counter()
    await asyncio.gather(
        *(sender(client, r, t, n, f"m{i}", latencies) for i, (r, t) in enumerate(pairs))
    )
    elapsed = time.perf_counter() - start
    return {
        "events/s": len(latencies) / elapsed,
        "p50 ms": percentile(latencies, 50) * 1000,
        "p99 ms": percentile(latencies, 99) * 1000,
    }


async def bench_messages(
    client: httpx.AsyncClient, room_id: str, token: str, requests: int, limit: int = 50
) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    end = None
    for _ in range(requests):
        query = f"dir=b&limit={limit}" + (f"&from={quote(end)}" if end else "")
        start = time.perf_counter()
        response = await client.get(
            f"/_matrix/client/v3/rooms/{quote(room_id)}/messages?{query}", headers=headers
        )
        latencies.append(time.perf_counter() - start)
        response.raise_for_status()
        end = response.json().get("end")  # page back; start over at the top when done
    return {
        "p50 ms": percentile(latencies, 50) * 1000,
        "p99 ms": percentile(latencies, 99) * 1000,
        "mean ms": statistics.mean(latencies) * 1000,
    }


async def run_one(base_url: str, senders: int, messages: int) -> dict[str, dict[str, float]]:
    limits = httpx.Limits(max_connections=senders + 5, max_keepalive_connections=senders + 5)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        room_id, tokens = await setup_room(client, senders)
        send = await bench_send(client, [room_id] * len(tokens), tokens, messages)
        read = await bench_messages(client, room_id, tokens[1], 200)
    return {"send": send, "messages": read}


def report(name: str, result: dict[str, dict[str, float]]) -> None:
    send, read = result["send"], result["messages"]
    print(
        f"{name:28} send {send['events/s']:8.1f} events/s  p50 {send['p50 ms']:7.1f} ms  "
        f"p99 {send['p99 ms']:7.1f} ms | /messages p50 {read['p50 ms']:6.1f} ms  "
        f"p99 {read['p99 ms']:6.1f} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--messages", type=int, default=50, help="per sender")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--synapse-python", default=os.environ.get("SYNAPSE_PYTHON", ""))
    args = parser.parse_args()
    print(f"{args.senders} senders x {args.messages} messages; /messages: 200 pages of 50")
    with tempfile.TemporaryDirectory() as tmp:
        env = {"DATABASE_URL": args.database_url} if args.database_url else {}
        os.environ.update(env)
        server = matrixhs(Path(tmp) / "matrixhs").start()
        try:
            backend = "PostgreSQL" if args.database_url else "SQLite"
            report(
                f"matrixhs ({backend})",
                asyncio.run(run_one(server.base_url, args.senders, args.messages)),
            )
        finally:
            server.stop()
        if args.synapse_python:
            if not args.database_url:
                sys.exit("Synapse needs --database-url (PostgreSQL)")
            synapse = Synapse(args.synapse_python, Path(tmp) / "synapse", args.database_url).start()
            try:
                report(
                    "Synapse (PostgreSQL)",
                    asyncio.run(run_one(synapse.base_url, args.senders, args.messages)),
                )
            finally:
                synapse.stop()


if __name__ == "__main__":
    main()
