"""/sync performance, this homeserver beside Synapse: wake-up fan-out, big initial sync,
cheap incremental syncs.

    .venv/bin/python bench/sync_bench.py \\
        --database-url postgres://postgres@127.0.0.1:5432/postgres \\
        --synapse-python /tmp/synvenv/bin/python [--quick] [--servers matrixhs,synapse]

Three measures per server, each printed as one line as soon as it is done:

1. wake-up: ``--clients`` users (a device each) and a sender all join one public room, so
   every message wakes every waiting client (fan-out). Each client does an initial sync,
   then long-polls GET /sync?since=...&timeout=30000 in a loop; the sender sends
   ``--messages`` messages, one every ``--interval`` s. Latency of a delivery = from just
   before the send request goes out to the moment that client's /sync response holding
   the event has been read. Reports p50/p95/p99 and deliveries against
   messages x clients (missing ones are counted, never waited for beyond a grace time).
2. initial sync: one user in ``--rooms`` rooms (each created with a name and a topic, a
   second member, 5 messages from the two). GET /sync without ``since``, with Element's
   filter (timeline limit 20, lazy-loaded members; see ``FILTER``), ``--repeats`` times,
   one after another, each from a freshly logged-in device (Synapse answers an identical
   repeat from a 2-minute response cache keyed on the device; a new device is what a new
   login does). Reports the first call, then median and max of the repeats.
3. incremental: ``--pollers`` of the clients each repeat GET /sync?since=<its latest
   next_batch>&timeout=0 as fast as answers come, for ``--seconds`` s: first idle (no new
   events: the cheap, frequent request; Synapse may answer repeats of an identical request
   from its response cache, which is part of what it does), then with a message every
   100 ms into their room (every answer carries new data). Reports requests/s, p50/p99.

Filters are passed inline (``filter={...}``), as the spec allows. The clients are asyncio
+ httpx in this process, on the same machine as the server (figures include that cost).
Without ``--synapse-python`` only this server runs; without ``--database-url`` it runs in
embedded mode (SQLite). A server without /sync fails at the first /sync with its answer
(e.g. 404 M_UNRECOGNIZED) instead of hanging; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.room_bench import percentile
from bench.servers import Synapse, matrixhs

SYNC = "/_matrix/client/v3/sync"
#: What Element Web asks for (matrix-js-sdk with initialSyncLimit 20 and lazy-loaded members).
FILTER = json.dumps(
    {"room": {"timeline": {"limit": 20}, "state": {"lazy_load_members": True}}},
    separators=(",", ":"),
)
LONG_POLL_MS = 30_000
GRACE_S = 15.0  # how long to wait for deliveries after the last send
SETUP_CONCURRENCY = 10


class BenchError(Exception):
    """The server answered something a client cannot go on with."""


def refused(response: httpx.Response) -> BenchError:
    try:
        body = response.json()
        detail = f"{body.get('errcode')}: {body.get('error')}"
    except ValueError:
        detail = response.text[:200]
    no_sync = response.status_code == 404 and response.request.url.path == SYNC
    hint = " (this server has no /sync yet?)" if no_sync else ""
    return BenchError(
        f"{response.request.method} {response.request.url.path} answered "
        f"{response.status_code} {detail}{hint}"
    )


@dataclass
class Account:
    user_id: str
    token: str
    device_id: str = ""
    since: str | None = None
    #: The account's own connection, for the simulated clients (one shared pool for all
    #: of them costs the bench O(clients^2) CPU per request in httpcore).
    http: httpx.AsyncClient | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def call(
    client: httpx.AsyncClient, method: str, url: str, account: Account | None = None, **kwargs: Any
) -> dict[str, Any]:
    headers = account.headers if account else {}
    response = await client.request(method, url, headers=headers, **kwargs)
    if response.status_code != 200:
        raise refused(response)
    return dict(response.json())


async def register(client: httpx.AsyncClient, name: str) -> Account:
    body = await call(
        client,
        "POST",
        "/_matrix/client/v3/register",
        json={"username": name, "password": f"{name}-password", "auth": {"type": "m.login.dummy"}},
    )
    return Account(body["user_id"], body["access_token"], body["device_id"])


async def login(client: httpx.AsyncClient, account: Account) -> Account:
    name = account.user_id[1:].split(":", 1)[0]
    body = await call(
        client,
        "POST",
        "/_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": name},
            "password": f"{name}-password",
        },
    )
    return Account(body["user_id"], body["access_token"], body["device_id"])


async def send(
    client: httpx.AsyncClient, account: Account, room_id: str, txn: str, content: dict[str, Any]
) -> None:
    url = f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/{txn}"
    await call(client, "PUT", url, account, json={"msgtype": "m.text", **content})


async def sync(
    client: httpx.AsyncClient, account: Account, timeout_ms: int = 0, initial: bool = False
) -> tuple[dict[str, Any], float, int]:
    """One GET /sync from the account's token (none if ``initial``); advances the token.

    Returns the body, the perf_counter() when the whole answer had been read, its size.
    """
    params = {"filter": FILTER, "timeout": str(timeout_ms)}
    if account.since and not initial:
        params["since"] = account.since
    response = await client.get(
        SYNC, params=params, headers=account.headers, timeout=timeout_ms / 1000 + 300
    )
    arrived = time.perf_counter()
    if response.status_code != 200:
        raise refused(response)
    body = response.json()
    if not isinstance(body.get("next_batch"), str):
        raise BenchError(f"/sync answer without next_batch: {response.text[:200]}")
    account.since = body["next_batch"]
    return body, arrived, len(response.content)


async def bounded(limit: int, jobs: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(run(job) for job in jobs)))


def ms(seconds: float) -> float:
    return seconds * 1000


# --- 1. wake-up fan-out -------------------------------------------------------------------


def bench_seqs(body: dict[str, Any], room_id: str, sender: str) -> list[int]:
    room = body.get("rooms", {}).get("join", {}).get(room_id, {})
    return [
        e["content"]["bench_seq"]
        for e in room.get("timeline", {}).get("events", [])
        if e.get("sender") == sender and isinstance(e.get("content", {}).get("bench_seq"), int)
    ]


def own(account: Account) -> httpx.AsyncClient:
    assert account.http is not None
    return account.http


async def bench_wakeup(
    send_client: httpx.AsyncClient,
    room_id: str,
    sender: Account,
    receivers: list[Account],
    messages: int,
    interval: float,
) -> dict[str, Any]:
    await bounded(SETUP_CONCURRENCY, [lambda a=a: sync(own(a), a, initial=True) for a in receivers])
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    stop = -1  # the last message (not timed) tells each poller to finish

    by_message: dict[int, list[float]] = {}

    async def poll(account: Account) -> None:
        seen: set[int] = set()
        while True:
            body, arrived, _ = await sync(own(account), account, timeout_ms=LONG_POLL_MS)
            for seq in bench_seqs(body, room_id, sender.user_id):
                if seq == stop:
                    return
                if seq not in seen:
                    seen.add(seq)
                    latencies.append(arrived - sent_at[seq])
                    by_message.setdefault(seq, []).append(arrived - sent_at[seq])

    pollers = [asyncio.create_task(poll(a)) for a in receivers]
    await asyncio.sleep(1.0)  # let the long-polls park
    sends: list[float] = []
    start, cpu = time.perf_counter(), time.process_time()
    for seq in range(messages):
        await asyncio.sleep(max(0.0, start + seq * interval - time.perf_counter()))
        sent_at[seq] = time.perf_counter()
        await send(
            send_client, sender, room_id, f"wake{seq}", {"body": f"wake {seq}", "bench_seq": seq}
        )
        sends.append(time.perf_counter() - sent_at[seq])
    await send(send_client, sender, room_id, "wake-stop", {"body": "stop", "bench_seq": stop})
    done, pending = await asyncio.wait(pollers, timeout=GRACE_S)
    client_cpu = (time.process_time() - cpu) / (time.perf_counter() - start)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    errors = [task.exception() for task in done if task.exception() is not None]
    if errors and not latencies:
        raise BenchError(f"every poller failed: {errors[0]}")
    expected = messages * len(receivers)
    return {
        "expected": expected,
        "delivered": len(latencies),
        "missing": expected - len(latencies),
        "errors": len(errors),
        "first error": str(errors[0]) if errors else "",
        "p50": ms(percentile(latencies, 50)) if latencies else float("nan"),
        "p95": ms(percentile(latencies, 95)) if latencies else float("nan"),
        "p99": ms(percentile(latencies, 99)) if latencies else float("nan"),
        "send p50": ms(percentile(sends, 50)),
        "client cpu": client_cpu,
        # until the last client has a message: median over the messages
        "all p50": ms(statistics.median(max(v) for v in by_message.values()))
        if by_message
        else float("nan"),
    }


# --- 2. initial sync of a user in many rooms ----------------------------------------------


async def bench_initial(
    client: httpx.AsyncClient, owner: Account, other: Account, rooms: int, repeats: int
) -> dict[str, Any]:
    async def make_room(i: int) -> None:
        created = await call(
            client,
            "POST",
            "/_matrix/client/v3/createRoom",
            owner,
            json={"preset": "public_chat", "name": f"Room {i}", "topic": f"Topic of room {i}"},
        )
        room_id = created["room_id"]
        await call(client, "POST", f"/_matrix/client/v3/join/{quote(room_id)}", other, json={})
        for j in range(5):
            await send(
                client,
                (owner, other)[j % 2],
                room_id,
                f"r{i}m{j}",
                {"body": f"message {j} in room {i}"},
            )

    await bounded(SETUP_CONCURRENCY, [lambda i=i: make_room(i) for i in range(rooms)])
    devices = [await login(client, owner) for _ in range(repeats)]
    times: list[float] = []
    size = 0
    for device in devices:
        start = time.perf_counter()
        body, arrived, size = await sync(client, device, initial=True)
        times.append(arrived - start)
        joined = body.get("rooms", {}).get("join", {})
        if len(joined) != rooms:
            raise BenchError(f"initial sync listed {len(joined)} joined rooms, expected {rooms}")
    rest = times[1:] or times
    return {
        "first": ms(times[0]),
        "median": ms(statistics.median(rest)),
        "max": ms(max(rest)),
        "KiB": size / 1024,
    }


# --- 3. incremental syncs -----------------------------------------------------------------


async def bench_incremental(
    send_client: httpx.AsyncClient,
    room_id: str,
    sender: Account,
    pollers: list[Account],
    seconds: float,
    trickle: bool,
) -> dict[str, float]:
    latencies: list[float] = []
    for account in pollers:  # warm up, and start from each poller's latest token
        await sync(own(account), account)
    end = time.perf_counter() + seconds

    async def loop(account: Account) -> None:
        while time.perf_counter() < end:
            start = time.perf_counter()
            _, arrived, _ = await sync(own(account), account)
            latencies.append(arrived - start)

    async def trickler() -> None:
        n = 0
        while time.perf_counter() < end:
            await send(send_client, sender, room_id, f"trickle{n}", {"body": f"trickle {n}"})
            n += 1
            await asyncio.sleep(0.1)

    start = time.perf_counter()
    await asyncio.gather(*(loop(a) for a in pollers), *([trickler()] if trickle else []))
    elapsed = time.perf_counter() - start
    return {
        "req/s": len(latencies) / elapsed,
        "p50": ms(percentile(latencies, 50)),
        "p99": ms(percentile(latencies, 99)),
    }


async def wakeup_room(
    stack: contextlib.AsyncExitStack,
    client: httpx.AsyncClient,
    base_url: str,
    clients: int,
    prefix: str = "",
) -> tuple[str, Account, list[Account]]:
    """A sender and ``clients`` receivers (a connection each, closed with ``stack``) in
    one public room: the room ID, the sender, the receivers."""
    sender = await register(client, f"{prefix}sender")
    await sync(client, sender, initial=True)  # fail fast on a server without /sync
    receivers = await bounded(
        SETUP_CONCURRENCY,
        [lambda i=i: register(client, f"{prefix}client{i}") for i in range(clients)],
    )
    for account in receivers:  # a connection each, as separate devices would have
        account.http = await stack.enter_async_context(
            httpx.AsyncClient(
                base_url=base_url, timeout=120, limits=httpx.Limits(max_connections=1)
            )
        )
    created = await call(
        client,
        "POST",
        "/_matrix/client/v3/createRoom",
        sender,
        json={"preset": "public_chat", "name": "wake-up"},
    )
    room_id = created["room_id"]
    join = f"/_matrix/client/v3/join/{quote(room_id)}"
    await bounded(
        SETUP_CONCURRENCY, [lambda a=a: call(client, "POST", join, a, json={}) for a in receivers]
    )
    return room_id, sender, receivers


# --- driver -------------------------------------------------------------------------------


async def run_one(name: str, base_url: str, args: argparse.Namespace) -> None:
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=120))
        send_client = await stack.enter_async_context(
            httpx.AsyncClient(base_url=base_url, timeout=120)
        )
        room_id, sender, receivers = await wakeup_room(stack, client, base_url, args.clients)

        w = await bench_wakeup(
            send_client, room_id, sender, receivers, args.messages, args.interval
        )
        errors = f"  errors {w['errors']} ({w['first error']})" if w["errors"] else ""
        print(
            f"{name:20} wake-up      {args.clients} clients x {args.messages} msgs: "
            f"p50 {w['p50']:7.1f} ms  p95 {w['p95']:7.1f} ms  p99 {w['p99']:7.1f} ms  "
            f"delivered {w['delivered']}/{w['expected']}  missing {w['missing']}{errors}  "
            f"(all clients have it: p50 {w['all p50']:.1f} ms; send p50 {w['send p50']:.1f} ms; "
            f"bench client CPU {w['client cpu']:.0%})",
            flush=True,
        )

        for trickle in (False, True):
            r = await bench_incremental(
                send_client, room_id, sender, receivers[: args.pollers], args.seconds, trickle
            )
            label = "with a message/100ms" if trickle else "idle"
            print(
                f"{name:20} incremental  {args.pollers} pollers, timeout=0, {label}: "
                f"{r['req/s']:8.1f} req/s  p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms",
                flush=True,
            )

        owner, other = await register(client, "owner"), await register(client, "other")
        i = await bench_initial(client, owner, other, args.rooms, args.repeats)
        print(
            f"{name:20} initial sync {args.rooms} rooms ({i['KiB']:.0f} KiB): "
            f"first {i['first']:8.1f} ms  then median {i['median']:8.1f} ms  "
            f"max {i['max']:8.1f} ms  ({args.repeats - 1 or 1} repeats)",
            flush=True,
        )


def run_guarded(name: str, base_url: str, args: argparse.Namespace) -> bool:
    try:
        asyncio.run(run_one(name, base_url, args))
        return True
    except (BenchError, httpx.HTTPError) as exc:
        print(f"{name:20} FAILED: {type(exc).__name__}: {exc}", flush=True)
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100, help="waiting clients (wake-up)")
    parser.add_argument("--messages", type=int, default=50, help="messages sent (wake-up)")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between messages")
    parser.add_argument("--rooms", type=int, default=200, help="rooms of the initial-sync user")
    parser.add_argument("--repeats", type=int, default=5, help="initial syncs, the first included")
    parser.add_argument("--pollers", type=int, default=20, help="clients (incremental)")
    parser.add_argument("--seconds", type=float, default=5, help="per incremental run")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="20 clients x 10 messages, 20 rooms, 3 repeats, 5 pollers x 3 s",
    )
    parser.add_argument(
        "--servers",
        default="matrixhs,synapse",
        help="which to run (Synapse only with --synapse-python)",
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--synapse-python", default=os.environ.get("SYNAPSE_PYTHON", ""))
    args = parser.parse_args()
    servers = set(args.servers.split(","))
    if args.quick:
        args.clients, args.messages, args.rooms, args.repeats = 20, 10, 20, 3
        args.pollers, args.seconds = 5, 3.0
    args.pollers = min(args.pollers, args.clients)
    if args.synapse_python and not args.database_url:
        sys.exit("Synapse needs --database-url (PostgreSQL)")
    print(
        f"wake-up: {args.clients} clients, {args.messages} messages every {args.interval} s; "
        f"incremental: {args.pollers} pollers x {args.seconds} s; initial sync: {args.rooms} "
        f"rooms, {args.repeats} calls; filter {FILTER}",
        flush=True,
    )
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        env = {"DATABASE_URL": args.database_url} if args.database_url else {}
        os.environ.update(env)
        if "matrixhs" in servers:
            server = matrixhs(Path(tmp) / "matrixhs").start()
            try:
                backend = "PostgreSQL" if args.database_url else "SQLite"
                ok = run_guarded(f"matrixhs ({backend})", server.base_url, args) and ok
                if not ok:  # show why, from the server's own log
                    print(server.log_path.read_text()[-4000:], file=sys.stderr)
            finally:
                server.stop()
        if args.synapse_python and "synapse" in servers:
            synapse = Synapse(args.synapse_python, Path(tmp) / "synapse", args.database_url).start()
            try:
                ok = run_guarded("Synapse (PostgreSQL)", synapse.base_url, args) and ok
            finally:
                synapse.stop()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
