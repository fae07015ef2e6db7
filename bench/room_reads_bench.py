"""Reads of a 200-member room, in-process (Django's test client, no HTTP): p50 of
/members, /state, /joined_members and a /messages page of 20.

    .venv/bin/python bench/room_reads_bench.py [--members 200] [--requests 40]

Runs on a fresh SQLite database in a temporary data dir (DATABASE_URL is ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        MATRIXHS_DATA_DIR=tempfile.mkdtemp(prefix="reads-bench-"),
        MATRIXHS_SERVER_NAME="bench.test",
        MATRIXHS_RATELIMIT_ENABLED="false",
        MATRIXHS_REGISTRATION="open",
        MATRIXHS_PUSH_EVALUATION="false",
        DJANGO_SETTINGS_MODULE="matrixhs.settings",
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    client = Client()

    def post(path: str, body: object, token: str | None = None) -> dict[str, object]:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        response = client.post(
            f"/_matrix/client/v3/{path}", json.dumps(body), "application/json", **headers
        )
        assert response.status_code == 200, response.content
        return response.json()  # type: ignore[no-any-return]

    tokens = [
        str(
            post(
                "register",
                {
                    "username": f"u{n}",
                    "password": "Bench-pass-1",
                    "auth": {"type": "m.login.dummy"},
                },
            )["access_token"]
        )
        for n in range(args.members)
    ]
    room = quote(str(post("createRoom", {"preset": "public_chat"}, tokens[0])["room_id"]))
    for token in tokens[1:]:
        post(f"join/{room}", {}, token)
    for n in range(30):
        client.put(
            f"/_matrix/client/v3/rooms/{room}/send/m.room.message/t{n}",
            json.dumps({"msgtype": "m.text", "body": f"{n}"}),
            "application/json",
            HTTP_AUTHORIZATION=f"Bearer {tokens[0]}",
        )

    def p50(path: str) -> float:
        times = []
        for _ in range(args.requests):
            started = time.perf_counter()
            response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {tokens[1]}")
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content
        return statistics.median(times[5:])

    for name in ("members", "state", "joined_members", "messages?dir=b&limit=20"):
        print(f"{name:<24} p50 {p50(f'/_matrix/client/v3/rooms/{room}/{name}'):6.1f} ms")


if __name__ == "__main__":
    main()
