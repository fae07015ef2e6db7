"""/keys/query for 100 users, in-process (Django's test client, no HTTP): p50/p99 of 50
queries by one user about 100 others, each with a device and cross-signing keys.

    .venv/bin/python bench/keys_query_bench.py [--users 100] [--queries 50]

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        MATRIXHS_DATA_DIR=tempfile.mkdtemp(prefix="keys-bench-"),
        MATRIXHS_SERVER_NAME="bench.test",
        MATRIXHS_RATELIMIT_ENABLED="false",
        MATRIXHS_REGISTRATION="open",
        DJANGO_SETTINGS_MODULE="matrixhs.settings",
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from e2ee.tests.support import ClientDevice, CrossSigning

    call_command("migrate", verbosity=0)
    client = Client()

    def post(path: str, body: object, token: str | None = None) -> dict[str, object]:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        response = client.post(
            f"/_matrix/client/v3/{path}", json.dumps(body), "application/json", **headers
        )
        assert response.status_code == 200, response.content
        return response.json()  # type: ignore[no-any-return]

    users = []
    for n in range(args.users + 1):
        body = {"username": f"u{n}", "password": "Bench-pass-1", "auth": {"type": "m.login.dummy"}}
        answer = post("register", body)
        users.append(
            (str(answer["user_id"]), str(answer["access_token"]), str(answer["device_id"]))
        )
    for user_id, token, device_id in users[1:]:
        post("keys/upload", {"device_keys": ClientDevice(user_id, device_id).device_keys()}, token)
        post("keys/device_signing/upload", CrossSigning(user_id).upload_body(), token)
    query = {"device_keys": {user_id: [] for user_id, _, _ in users[1:]}}
    asker = users[0][1]
    for _ in range(5):
        post("keys/query", query, asker)
    times = []
    for _ in range(args.queries):
        started = time.perf_counter()
        answer = post("keys/query", query, asker)
        times.append((time.perf_counter() - started) * 1000)
    assert len(answer["device_keys"]) == args.users  # type: ignore[arg-type]
    cuts = statistics.quantiles(times, n=100)
    print(f"/keys/query for {args.users} users: p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms")


if __name__ == "__main__":
    main()
