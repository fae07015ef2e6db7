"""CPU per request through the whole ASGI application, in-process, and where it goes.

    .venv/bin/python bench/request_cost.py [--requests 2000] [--profile] [--top 30]
        [--database-url postgres://postgres@127.0.0.1:5432/postgres]

No HTTP server and no client: each request is handed to the ASGI application as a server
would hand it (headers parsed, body read), so the figure is this server's own cost per
request, the part a load generator on the same machine cannot blur. Scenarios:

- GET /versions: the floor (no database).
- GET /whoami: the floor of an authenticated request (the access-token lookup).
- PUT /rooms/{id}/send/m.room.message/{txn}: a message into a room of two.
- GET /sync?since=...&timeout=0 by each of 50 members of a room after one new message
  (Element's filter, presence off): what each waiting /sync costs when a message wakes it.

Prints the CPU time per request (``time.process_time``: the event loop's and the request
threads' together) over ``--requests`` requests (50 syncs per round for /sync). With
``--profile``, also the functions of the request's sync handling that cost the most
(cProfile, cumulative), run on the main thread: that is where the view, the ORM and the
database driver spend it. Runs on a fresh SQLite database (embedded mode) unless
``--database-url`` names a PostgreSQL server (a database of its own, dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.servers import run_in_scratch_database

ELEMENT_FILTER = json.dumps(
    {"room": {"timeline": {"limit": 20}, "state": {"lazy_load_members": True}}}
)
SYNC_MEMBERS = 50


def scope(method: str, path: str, query: str = "", token: str | None = None) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8008"), (b"content-type", b"application/json")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8008),
    }


async def call(app: Any, request: dict[str, Any], body: bytes = b"") -> tuple[int, Any]:
    """One request through ``app``; its status and JSON body."""
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect: the request runs to its end
        raise AssertionError("unreachable")

    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(request, receive, send)
    payload = b"".join(m.get("body", b"") for m in messages[1:])
    return messages[0]["status"], json.loads(payload) if payload else None


def run_bench(args: argparse.Namespace) -> None:
    os.environ.setdefault("MATRIXHS_DATA_DIR", tempfile.mkdtemp(prefix="request-cost-"))
    os.environ.update(
        MATRIXHS_SERVER_NAME="bench.test",
        MATRIXHS_RATELIMIT_ENABLED="false",
        MATRIXHS_PRESENCE_ENABLED="false",
        MATRIXHS_ACCESS_LOG="false",
        DJANGO_SETTINGS_MODULE="matrixhs.settings",
    )
    import django

    django.setup()
    from asgiref.sync import sync_to_async
    from django.core.management import call_command

    from accounts.actions.devices import do_login_device
    from accounts.actions.tokens import issue_tokens
    from accounts.actions.users import do_register_user
    from matrixhs.asgi import application, django_application
    from rooms.actions.create import do_create_room
    from rooms.actions.membership import do_join
    from rooms.events import create_and_send_event
    from sync import consumers

    call_command("migrate", verbosity=0)
    users = [do_register_user(f"member{i}", None) for i in range(SYNC_MEMBERS)]
    tokens = [
        issue_tokens(user, do_login_device(user, None, None), False)["access_token"]
        for user in users
    ]
    big_room = do_create_room(users[0], {"preset": "public_chat", "name": "fan-out"})
    for user in users[1:]:
        do_join(user, big_room)
    small_room = do_create_room(users[0], {"preset": "private_chat", "name": "two"})
    for i in range(30):
        create_and_send_event(
            users[i % SYNC_MEMBERS].user_id,
            big_room,
            "m.room.message",
            {"msgtype": "m.text", "body": f"message {i}"},
        )
    txn = iter(range(10**9))
    message = json.dumps({"msgtype": "m.text", "body": "hello"}).encode()
    send_path = f"/_matrix/client/v3/rooms/{small_room}/send/m.room.message/"

    requests: dict[str, Callable[[], tuple[dict[str, Any], bytes]]] = {
        "GET /versions": lambda: (scope("GET", "/_matrix/client/versions"), b""),
        "GET /whoami": lambda: (
            scope("GET", "/_matrix/client/v3/account/whoami", token=tokens[0]),
            b"",
        ),
        "PUT send": lambda: (scope("PUT", f"{send_path}t{next(txn)}", token=tokens[0]), message),
    }

    async def serial(make: Callable[[], tuple[dict[str, Any], bytes]], count: int) -> None:
        for _ in range(count):
            status, answer = await call(application, *make())
            if status != 200:
                raise SystemExit(f"{status}: {answer}")

    for name, make in requests.items():
        asyncio.run(serial(make, 50))
        started = time.process_time()
        asyncio.run(serial(make, args.requests))
        cost = (time.process_time() - started) / args.requests * 1000
        print(f"{name:<28} {cost:6.3f} ms CPU per request")
        if args.profile:
            profile(lambda make=make: django_application._answer(*_body(make())), args)

    async def woken_syncs() -> list[str]:
        """Each member's next_batch, then one message: every member has one event to get."""
        query = f"filter={quote(ELEMENT_FILTER)}"
        since = []
        for token in tokens:
            _, answer = await call(
                application, scope("GET", "/_matrix/client/v3/sync", query, token)
            )
            since.append(answer["next_batch"])
        await sync_to_async(create_and_send_event)(
            users[0].user_id, big_room, "m.room.message", {"msgtype": "m.text", "body": "wake"}
        )
        return [f"since={s}&timeout=0&{query}" for s in since]

    async def sync_round(queries: list[str]) -> None:
        for token, query in zip(tokens, queries, strict=True):
            status, answer = await call(
                application, scope("GET", "/_matrix/client/v3/sync", query, token)
            )
            if status != 200 or big_room not in answer["rooms"]["join"]:
                raise SystemExit(f"{status}: {answer}")

    queries = asyncio.run(woken_syncs())
    rounds = max(1, args.requests // SYNC_MEMBERS)
    asyncio.run(sync_round(queries))
    started = time.process_time()
    for _ in range(rounds):
        asyncio.run(sync_round(queries))
    cost = (time.process_time() - started) / (rounds * SYNC_MEMBERS) * 1000
    print(f"{'GET /sync, woken by 1 event':<28} {cost:6.3f} ms CPU per request")
    if args.profile:
        endpoint = consumers.SyncLongPollConsumer()

        def compute_all() -> None:
            for token, query in zip(tokens, queries, strict=True):
                request = consumers.LongPollRequest(
                    scope("GET", "/_matrix/client/v3/sync", query, token), b""
                )
                endpoint._prepare_and_compute(request)

        profile(compute_all, args)


def _body(made: tuple[dict[str, Any], bytes]) -> tuple[dict[str, Any], io.BytesIO]:
    return made[0], io.BytesIO(made[1])


def profile(work: Callable[[], Any], args: argparse.Namespace) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(max(1, args.requests // 10)):
        work()
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    run_in_scratch_database(args.database_url, "request_cost", lambda: run_bench(args))


if __name__ == "__main__":
    main()
