"""This homeserver beside Synapse, row by row, in one command: the same load generator
against each, one process each on the same PostgreSQL (a fresh database each, dropped
afterwards), then a table of both figures and the ratio per row.

    .venv/bin/python bench/side_by_side.py --synapse-python /tmp/synvenv/bin/python \\
        [--database-url postgres://postgres@127.0.0.1:5432/postgres] [--quick] \\
        [--servers matrixhs,synapse] [--seconds 10] [--memory-users 100,1000,5000]

All rows run against one server, which is then stopped, before the other starts: they
never compete for the cores. Each row makes users and rooms of its own (names of its own)
and is guarded: a row that fails on one server puts the error in that cell, and the run
goes on. The clients are asyncio + httpx (and wrk) on the same machine as the server.

Rows, with their default sizes (``--quick`` shrinks them all for a smoke run):

1. GET /_matrix/client/versions with wrk (``--connections`` 32, ``--seconds`` 10):
   requests/s, and the server's CPU per request: utime + stime of the server process (all
   its threads: /proc/<pid>/stat) across the wrk run, divided by the requests completed.
2. GET /_matrix/client/v3/account/whoami: the same, with a bearer token.
3. send, ``--senders`` (20) users each in a room of their own, all at once, each sending
   its next message as soon as the last is answered (``--messages`` 50 each, after 3 to
   warm up): events/s overall (bench/room_bench.py).
4. send into one shared room by as many senders: events/s and p50 latency.
5. createRoom (private_chat, with a name): ``--creators`` (10) users at once,
   ``--rooms-each`` (10) rooms each, one after the other (after one to warm up): rooms/s.
6. sync fan-out: ``--fanout-clients`` (50) users long-poll /sync in one room; a sender
   sends ``--fanout-messages`` (20) messages, one every 0.2 s. A delivery's latency runs
   from the send to the /sync answer holding it: p50 and p99 (bench/sync_bench.py).
7. GET /rooms/{id}/messages?dir=b&limit=20 in a room of ``--history`` (300) messages,
   paging back and starting over at the top, ``--requests`` (50) times: p50.
8. POST /keys/query by one user about ``--key-users`` (100) others, each with a device
   (keys signed by its Ed25519 key) and cross-signing keys: p50 of ``--requests``.
9. GET /rooms/{id}/state and GET /rooms/{id}/members of a room of ``--members`` (200):
   p50 of ``--requests`` each.
10. initial sync of a user in ``--sync-rooms`` (200) rooms with Element's filter, each from
    a new device (bench/sync_bench.py), ``--repeats`` (5) times: median after the first.
11. memory of the server process: resident right after start (VmRSS), its peak over the
    whole run (VmHWM, /proc/<pid>/status) and at the end (VmRSS). Registration hashes a
    password on both servers (Argon2id, 19 MiB a hash, here; bcrypt in Synapse): the peak
    includes that.

Reads (7-9) are timed after 5 untimed requests. Ratios say how many times better this
server does: matrixhs/Synapse for rates, Synapse/matrixhs for latencies, CPU and memory.

``--memory-users 100,1000,5000`` (off by default) adds, for each count, a fresh server of
each kind: that many users registered (m.login.dummy with a password, 4 at a time, so
about as many hashes run as there are cores), each then active (an initial /sync and a
whoami, 10 at a time), then the process's peak and current resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.http_bench import cpu_seconds, memory_mib, wrk
from bench.room_bench import bench_messages, bench_send, percentile, setup_room
from bench.servers import Synapse, matrixhs
from bench.sync_bench import (
    SETUP_CONCURRENCY,
    Account,
    BenchError,
    bench_initial,
    bench_wakeup,
    bounded,
    call,
    ms,
    refused,
    register,
    send,
    sync,
    wakeup_room,
)
from e2ee.tests.client_keys import ClientDevice, CrossSigning

ROOT = Path(__file__).resolve().parents[1]
NAMES = {"matrixhs": "matrixhs", "synapse": "Synapse"}
CLIENT = "/_matrix/client/v3"
WARM_UP = 5  # untimed requests before each timed read
REGISTER_CONCURRENCY = 4  # --memory-users: registrations at once (each hashes a password)

QUICK = {
    "seconds": 2,
    "senders": 5,
    "messages": 10,
    "creators": 3,
    "rooms_each": 4,
    "fanout_clients": 10,
    "fanout_messages": 5,
    "history": 60,
    "key_users": 10,
    "members": 20,
    "sync_rooms": 10,
    "repeats": 3,
    "requests": 10,
}


class Server(Protocol):
    base_url: str
    process: subprocess.Popen[bytes] | None

    def stop(self) -> None: ...


@dataclass
class Target:
    """A started server as the rows see it."""

    base_url: str
    pid: int
    idle_rss_mib: int


@dataclass
class Result:
    values: dict[str, float]
    note: str = ""


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    fmt: str  # format of one figure, unit included
    higher_is_better: bool


@dataclass(frozen=True)
class Row:
    title: str
    metrics: tuple[Metric, ...]
    run: Callable[[Target, argparse.Namespace], Coroutine[Any, Any, Result]]


@dataclass
class Outcome:
    """What each row gave on one server: a Result, or the error it failed with."""

    rows: dict[str, Result | str] = field(default_factory=dict)


def rate(key: str, label: str, unit: str) -> Metric:
    return Metric(key, label, "{:,.0f} " + unit, True)


def latency(key: str, label: str) -> Metric:
    return Metric(key, label, "{:,.1f} ms", False)


def mib(key: str, label: str) -> Metric:
    return Metric(key, label, "{:,.0f} MiB", False)


def http_client(base_url: str, connections: int = 20) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits)


async def register_many(
    client: httpx.AsyncClient, prefix: str, count: int, at_once: int = SETUP_CONCURRENCY
) -> list[Account]:
    return await bounded(at_once, [partial(register, client, f"{prefix}{i}") for i in range(count)])


async def create_room(client: httpx.AsyncClient, account: Account, **body: Any) -> str:
    return str((await call(client, "POST", f"{CLIENT}/createRoom", account, json=body))["room_id"])


async def p50_ms(
    client: httpx.AsyncClient,
    account: Account,
    method: str,
    path: str,
    requests: int,
    json: dict[str, Any] | None = None,
) -> float:
    """p50 of ``requests`` identical requests, after WARM_UP untimed ones."""
    times: list[float] = []
    for i in range(WARM_UP + requests):
        start = time.perf_counter()
        response = await client.request(method, path, headers=account.headers, json=json)
        if response.status_code != 200:
            raise refused(response)
        if i >= WARM_UP:
            times.append(time.perf_counter() - start)
    return ms(percentile(times, 50))


# --- the rows -----------------------------------------------------------------------------


def wrk_row(target: Target, path: str, args: argparse.Namespace, token: str | None) -> Result:
    before = cpu_seconds(target.pid)
    figures = wrk(target.base_url + path, args.seconds, args.connections, token=token)
    used = cpu_seconds(target.pid) - before
    requests = int(figures["requests"])
    problems = [f"{figures[k]} {k}" for k in ("non-2xx", "timeouts") if figures[k] != "0"]
    return Result(
        {"req/s": float(figures["req/s"]), "cpu": ms(used / requests)},
        f"wrk p50 {figures['p50']}, p99 {figures['p99']}" + "".join(f", {p}" for p in problems),
    )


async def versions(target: Target, args: argparse.Namespace) -> Result:
    return wrk_row(target, "/_matrix/client/versions", args, None)


async def whoami(target: Target, args: argparse.Namespace) -> Result:
    async with http_client(target.base_url) as client:
        account = await register(client, "wrk")
    return wrk_row(target, f"{CLIENT}/account/whoami", args, account.token)


async def send_own_rooms(target: Target, args: argparse.Namespace) -> Result:
    async with http_client(target.base_url, args.senders + 5) as client:
        senders = await register_many(client, "own", args.senders)
        rooms = await asyncio.gather(
            *(create_room(client, a, preset="public_chat", name="own room") for a in senders)
        )
        figures = await bench_send(client, rooms, [a.token for a in senders], args.messages)
    return Result({"events/s": figures["events/s"]}, f"p50 {figures['p50 ms']:.1f} ms")


async def send_shared_room(target: Target, args: argparse.Namespace) -> Result:
    async with http_client(target.base_url, args.senders + 5) as client:
        room_id, tokens = await setup_room(client, args.senders, prefix="shared")
        figures = await bench_send(client, [room_id] * len(tokens), tokens, args.messages)
    return Result(
        {"events/s": figures["events/s"], "p50": figures["p50 ms"]},
        f"p99 {figures['p99 ms']:.1f} ms",
    )


async def create_rooms(target: Target, args: argparse.Namespace) -> Result:
    async with http_client(target.base_url, args.creators + 5) as client:
        creators = await register_many(client, "creator", args.creators)

        async def rooms_of(account: Account, first: int, count: int) -> None:
            for i in range(first, first + count):
                await create_room(client, account, preset="private_chat", name=f"room {i}")

        await asyncio.gather(*(rooms_of(a, 0, 1) for a in creators))
        start = time.perf_counter()
        await asyncio.gather(*(rooms_of(a, 1, args.rooms_each) for a in creators))
        elapsed = time.perf_counter() - start
    return Result({"rooms/s": args.creators * args.rooms_each / elapsed})


async def fan_out(target: Target, args: argparse.Namespace) -> Result:
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(http_client(target.base_url))
        send_client = await stack.enter_async_context(http_client(target.base_url))
        room_id, sender, receivers = await wakeup_room(
            stack, client, target.base_url, args.fanout_clients, prefix="fan"
        )
        w = await bench_wakeup(
            send_client, room_id, sender, receivers, args.fanout_messages, interval=0.2
        )
    note = f"delivered {w['delivered']}/{w['expected']}"
    if w["errors"]:
        note += f", {w['errors']} pollers failed ({w['first error']})"
    return Result({"p50": w["p50"], "p99": w["p99"]}, note)


async def messages_page(target: Target, args: argparse.Namespace) -> Result:
    async with http_client(target.base_url) as client:
        owner = await register(client, "historian")
        room_id = await create_room(client, owner, preset="public_chat", name="history")
        await bounded(
            SETUP_CONCURRENCY,
            [
                partial(send, client, owner, room_id, f"h{i}", {"body": f"message {i}"})
                for i in range(args.history)
            ],
        )
        await bench_messages(client, room_id, owner.token, WARM_UP, limit=20)
        figures = await bench_messages(client, room_id, owner.token, args.requests, limit=20)
    return Result({"p50": figures["p50 ms"]})


async def keys_query(target: Target, args: argparse.Namespace) -> Result:
    async with http_client(target.base_url) as client:
        asker, *others = await register_many(client, "keys", args.key_users + 1)

        async def upload(account: Account) -> None:
            device = ClientDevice(account.user_id, account.device_id)
            body = {"device_keys": device.device_keys()}
            await call(client, "POST", f"{CLIENT}/keys/upload", account, json=body)
            signing = CrossSigning(account.user_id).upload_body()
            await call(
                client, "POST", f"{CLIENT}/keys/device_signing/upload", account, json=signing
            )

        await bounded(SETUP_CONCURRENCY, [partial(upload, a) for a in others])
        query: dict[str, Any] = {"device_keys": {a.user_id: [] for a in others}}
        answer = await call(client, "POST", f"{CLIENT}/keys/query", asker, json=query)
        for part in ("device_keys", "master_keys", "self_signing_keys"):
            if len(answer.get(part, {})) != len(others):
                raise BenchError(f"/keys/query: {len(answer.get(part, {}))} users in {part}")
        p50 = await p50_ms(client, asker, "POST", f"{CLIENT}/keys/query", args.requests, query)
    return Result({"p50": p50})


async def room_reads(target: Target, args: argparse.Namespace) -> Result:
    async with http_client(target.base_url) as client:
        owner, *members = await register_many(client, "member", args.members)
        room_id = await create_room(client, owner, preset="public_chat", name="big room")
        join = f"{CLIENT}/join/{quote(room_id)}"
        await bounded(
            SETUP_CONCURRENCY, [partial(call, client, "POST", join, a, json={}) for a in members]
        )
        room = f"{CLIENT}/rooms/{quote(room_id)}"
        listed = len((await call(client, "GET", f"{room}/members", owner))["chunk"])
        if listed != args.members:
            raise BenchError(f"/members listed {listed} members, expected {args.members}")
        state = await p50_ms(client, owner, "GET", f"{room}/state", args.requests)
        members_p50 = await p50_ms(client, owner, "GET", f"{room}/members", args.requests)
    return Result({"state": state, "members": members_p50})


async def initial_sync(target: Target, args: argparse.Namespace) -> Result:
    async with http_client(target.base_url) as client:
        owner, other = await register(client, "owner"), await register(client, "other")
        figures = await bench_initial(client, owner, other, args.sync_rooms, args.repeats)
    return Result(
        {"median": figures["median"]},
        f"first {figures['first']:.1f} ms, {figures['KiB']:.0f} KiB",
    )


async def memory(target: Target, args: argparse.Namespace) -> Result:
    now, peak = memory_mib(target.pid)
    return Result({"idle": target.idle_rss_mib, "peak": peak, "end": now})


def rows(args: argparse.Namespace) -> list[Row]:
    wrk_metrics = (
        rate("req/s", f"req/s ({args.connections} connections)", "req/s"),
        Metric("cpu", "server CPU per request", "{:.2f} ms", False),
    )
    n = args.senders
    return [
        Row("GET /versions", wrk_metrics, versions),
        Row("GET /whoami", wrk_metrics, whoami),
        Row(
            f"send, {n} senders in own rooms",
            (rate("events/s", "events/s", "events/s"),),
            send_own_rooms,
        ),
        Row(
            f"send, {n} senders in one room",
            (rate("events/s", "events/s", "events/s"), latency("p50", "p50")),
            send_shared_room,
        ),
        Row(
            f"createRoom, {args.creators} creators",
            (rate("rooms/s", "rooms/s", "rooms/s"),),
            create_rooms,
        ),
        Row(
            f"sync fan-out, {args.fanout_clients} long-polling clients",
            (latency("p50", "delivery p50"), latency("p99", "delivery p99")),
            fan_out,
        ),
        Row(
            f"/messages limit=20, room of {args.history}",
            (latency("p50", "p50"),),
            messages_page,
        ),
        Row(f"/keys/query for {args.key_users} users", (latency("p50", "p50"),), keys_query),
        Row(
            f"room of {args.members} members",
            (latency("state", "GET /state p50"), latency("members", "GET /members p50")),
            room_reads,
        ),
        Row(
            f"initial sync, {args.sync_rooms} rooms",
            (latency("median", "median"),),
            initial_sync,
        ),
        Row(
            "server process memory",
            (
                mib("idle", "RSS right after start"),
                mib("peak", "peak RSS over the run"),
                mib("end", "RSS at the end"),
            ),
            memory,
        ),
    ]


def memory_users_row(users: int) -> Row:
    async def run(target: Target, args: argparse.Namespace) -> Result:
        async with http_client(target.base_url) as client:
            start = time.perf_counter()
            accounts = await register_many(client, "active", users, REGISTER_CONCURRENCY)
            registered = time.perf_counter() - start

            async def activate(account: Account) -> None:
                await sync(client, account, initial=True)
                await call(client, "GET", f"{CLIENT}/account/whoami", account)

            await bounded(SETUP_CONCURRENCY, [partial(activate, a) for a in accounts])
        now, peak = memory_mib(target.pid)
        return Result({"peak": peak, "now": now}, f"{users / registered:.1f} registrations/s")

    return Row(
        f"{users:,} active users",
        (mib("peak", "peak RSS"), mib("now", "RSS after")),
        run,
    )


# --- driver -------------------------------------------------------------------------------


def start(kind: str, data: Path, args: argparse.Namespace) -> tuple[Server, Path]:
    """The server of that kind, started, and its log file."""
    if kind == "synapse":
        synapse = Synapse(args.synapse_python, data, args.database_url).start()
        return synapse, data / "synapse.log"
    server = matrixhs(data).start()
    return server, server.log_path


def run_rows(kind: str, row_list: list[Row], args: argparse.Namespace) -> Outcome:
    """Starts a server of that kind, runs the rows against it one after the other, stops it."""
    outcome = Outcome()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            server, log = start(kind, Path(tmp) / kind, args)
        except (RuntimeError, subprocess.CalledProcessError, psycopg.Error) as exc:
            print(f"{kind:8} did not start: {exc}", flush=True)
            outcome.rows = {row.title: f"did not start: {exc}" for row in row_list}
            return outcome
        try:
            assert server.process is not None
            pid = server.process.pid
            target = Target(server.base_url, pid, memory_mib(pid)[0])
            for row in row_list:
                began = time.perf_counter()
                try:
                    result: Result | str = asyncio.run(row.run(target, args))
                except Exception as exc:  # a failed row is reported, the others still run
                    result = f"{type(exc).__name__}: {exc}"
                    print(f"  {kind} log, last lines:\n{tail(log)}", file=sys.stderr)
                outcome.rows[row.title] = result
                took = time.perf_counter() - began
                peak = memory_mib(pid)[1] if server.process.poll() is None else 0
                print(
                    f"{kind:8} {row.title:44} {describe(row, result)}  "
                    f"({took:.0f} s; peak RSS so far {peak} MiB)",
                    flush=True,
                )
        finally:
            server.stop()
    return outcome


def tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def describe(row: Row, result: Result | str) -> str:
    if isinstance(result, str):
        return f"FAILED: {result}"
    figures = ", ".join(f"{m.label} {m.fmt.format(result.values[m.key])}" for m in row.metrics)
    return figures + (f" [{result.note}]" if result.note else "")


def cell(metric: Metric, result: Result | str | None) -> str:
    if result is None:
        return ""
    if isinstance(result, str):
        return "error: " + result.replace("|", "/")[:120]
    return metric.fmt.format(result.values[metric.key])


def ratio(metric: Metric, synapse: Result | str | None, ours: Result | str | None) -> str:
    if not isinstance(synapse, Result) or not isinstance(ours, Result):
        return ""
    theirs, mine = synapse.values[metric.key], ours.values[metric.key]
    better, worse = (mine, theirs) if metric.higher_is_better else (theirs, mine)
    return f"{better / worse:.2f}\u00d7" if worse else ""  # times


def table(row_list: list[Row], outcomes: dict[str, Outcome]) -> list[str]:
    """| row | Synapse | matrixhs | ratio |, or one column when one server ran."""
    kinds = [kind for kind in ("synapse", "matrixhs") if kind in outcomes]
    both = len(kinds) == 2
    names = [NAMES[kind] for kind in kinds] + (["ratio"] if both else [])
    lines = ["| row | " + " | ".join(names) + " |", "|---" + "|---:" * len(names) + "|"]
    for row in row_list:
        results = [outcomes[kind].rows.get(row.title) for kind in kinds]
        for metric in row.metrics:
            cells = [cell(metric, result) for result in results]
            if both:
                cells.append(ratio(metric, *results))
            lines.append(f"| {row.title}: {metric.label} | " + " | ".join(cells) + " |")
    return lines


def notes(row_list: list[Row], outcomes: dict[str, Outcome]) -> list[str]:
    return [
        f"- {row.title}, {NAMES[kind]}: {result.note}"
        for row in row_list
        for kind, outcome in outcomes.items()
        if isinstance(result := outcome.rows.get(row.title), Result) and result.note
    ]


def machine(args: argparse.Namespace, kinds: list[str]) -> str:
    head = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    with psycopg.connect(args.database_url) as conn:
        postgres = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    parts = [
        f"{len(os.sched_getaffinity(0))} cores (nproc)",
        f"PostgreSQL {postgres}",
        f"matrixhs {head} ({'scaled' if os.environ.get('REDIS_URL') else 'embedded'} mode)",
    ]
    if "synapse" in kinds:
        version = subprocess.run(
            [args.synapse_python, "-c", "import synapse; print(synapse.__version__)"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        parts.append(f"Synapse {version}")
    return "Machine: " + ", ".join(parts)


def print_section(title: str, row_list: list[Row], outcomes: dict[str, Outcome]) -> None:
    print(f"\n### {title}\n")
    print("\n".join(table(row_list, outcomes)))
    if found := notes(row_list, outcomes):
        print("\nNotes:\n" + "\n".join(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--synapse-python", default=os.environ.get("SYNAPSE_PYTHON", ""))
    parser.add_argument("--servers", default="matrixhs,synapse", help="which to run, in order")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--seconds", type=int, default=10, help="of each wrk run (rows 1, 2)")
    parser.add_argument("--connections", type=int, default=32, help="of wrk (rows 1, 2)")
    parser.add_argument("--senders", type=int, default=20, help="rows 3, 4")
    parser.add_argument("--messages", type=int, default=50, help="per sender (rows 3, 4)")
    parser.add_argument("--creators", type=int, default=10, help="row 5")
    parser.add_argument("--rooms-each", type=int, default=10, help="per creator (row 5)")
    parser.add_argument("--fanout-clients", type=int, default=50, help="row 6")
    parser.add_argument("--fanout-messages", type=int, default=20, help="row 6")
    parser.add_argument("--history", type=int, default=300, help="messages in the room (row 7)")
    parser.add_argument("--key-users", type=int, default=100, help="row 8")
    parser.add_argument("--members", type=int, default=200, help="row 9")
    parser.add_argument("--sync-rooms", type=int, default=200, help="row 10")
    parser.add_argument("--repeats", type=int, default=5, help="initial syncs (row 10)")
    parser.add_argument("--requests", type=int, default=50, help="timed reads (rows 7-9)")
    parser.add_argument(
        "--memory-users", default="", help="e.g. 100,1000,5000: memory with that many users"
    )
    args = parser.parse_args()
    if args.quick:
        vars(args).update(QUICK)
    kinds = [kind for kind in args.servers.split(",") if kind]
    if set(kinds) - {"matrixhs", "synapse"}:
        sys.exit("--servers takes matrixhs and synapse")
    if "synapse" in kinds and not args.synapse_python:
        sys.exit("Synapse needs --synapse-python (or SYNAPSE_PYTHON), or use --servers matrixhs")
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt install wrk")
    os.environ["DATABASE_URL"] = args.database_url  # for this server's RunningServer

    row_list = rows(args)
    outcomes = {kind: run_rows(kind, row_list, args) for kind in kinds}
    memory_rows = [memory_users_row(int(n)) for n in args.memory_users.split(",") if n]
    memory_outcomes = {kind: Outcome() for kind in kinds}
    for row in memory_rows:
        for kind in kinds:
            memory_outcomes[kind].rows.update(run_rows(kind, [row], args).rows)

    print_section("Side by side", row_list, outcomes)
    if memory_rows:
        print_section("Memory with active users", memory_rows, memory_outcomes)
    print("\n" + machine(args, kinds))


if __name__ == "__main__":
    main()
