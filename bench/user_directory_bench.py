"""POST /user_directory/search over 100,000 users: p50/p99 of a search.

    .venv/bin/python bench/user_directory_bench.py \
        [--users 100000 --searches 2000 --open-every 10] \
        [--database-url postgres://postgres@127.0.0.1:5432/postgres]

Runs in-process on a fresh database: SQLite in a temporary data dir, or with
``--database-url`` a new PostgreSQL database on that server, dropped afterwards (an
inherited DATABASE_URL is ignored). The population is written in bulk, not through room
events (100,000 joins would take the bench its hour): ``--users`` local users with
made-up two-word display names, ``--users // 50`` rooms of which one in ``--open-every``
(10; 0: none) is public, each user joined to one to three rooms. The directory is then
built by the same code the server runs on membership changes (``refresh_users``; its
time is printed), and ``--searches`` searches run through the query the endpoint calls,
by random users, for a prefix (1 to 4 letters) of a first name, of a last name, a whole
name, and two prefixes.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.servers import run_in_scratch_database

SYLLABLES = "ka lo mi ne ri su ta ve zo an el is or ul ba de fi go hu ja".split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--searches", type=int, default=2000)
    parser.add_argument(
        "--open-every", type=int, default=10, help="one room in N is public (0: none is)"
    )
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    run_in_scratch_database(args.database_url, "directory_bench", lambda: run_bench(args))


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def populate(users: int, rng: random.Random, open_every: int) -> list[tuple[str, str, str]]:
    """Users, rooms and memberships in bulk; returns (user_id, first, last) per user."""
    from accounts.models import User
    from rooms.models import Room, RoomMembership

    server = "bench.test"
    people = [(f"@user{i}:{server}", _word(rng), _word(rng)) for i in range(users)]
    User.objects.bulk_create(
        (
            User(
                user_id=user_id,
                localpart=user_id[1:].split(":")[0],
                displayname=f"{first} {last}",
                password="!",
                created_ts=0,
            )
            for user_id, first, last in people
        ),
        batch_size=5000,
    )
    rooms = Room.objects.bulk_create(
        Room(
            room_id=f"!room{i}:{server}",
            room_version="12",
            creator=people[0][0],
            created_ts=0,
            directory_open=open_every > 0 and i % open_every == 0,
        )
        for i in range(max(1, users // 50))
    )
    memberships = []
    for n, (user_id, first, last) in enumerate(people):
        for room in rng.sample(rooms, min(len(rooms), rng.randint(1, 3))):
            memberships.append(
                RoomMembership(
                    room=room,
                    user_id=user_id,
                    membership="join",
                    event_id=f"$m{n}_{room.pk}",
                    sender=user_id,
                    displayname=f"{first} {last}",
                )
            )
    RoomMembership.objects.bulk_create(memberships, batch_size=5000)
    return people


def run_bench(args: argparse.Namespace) -> None:
    os.environ.setdefault("MATRIXHS_DATA_DIR", tempfile.mkdtemp(prefix="directory-bench-"))
    os.environ.setdefault("MATRIXHS_SERVER_NAME", "bench.test")
    os.environ["DJANGO_SETTINGS_MODULE"] = "matrixhs.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from rooms.actions.user_directory import refresh_users
    from rooms.queries.user_directory import search_users

    call_command("migrate", verbosity=0)
    rng = random.Random(7)  # noqa: S311 (made-up names, repeatable)
    started = time.perf_counter()
    with transaction.atomic():
        people = populate(args.users, rng, args.open_every)
    print(
        f"setup: {args.users} users in {time.perf_counter() - started:.1f}s ({connection.vendor})"
    )
    started = time.perf_counter()
    with transaction.atomic():
        refresh_users([user_id for user_id, _, _ in people])
    elapsed = time.perf_counter() - started
    print(f"index: {args.users} entries built in {elapsed:.1f}s ({args.users / elapsed:.0f}/s)")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    def term() -> str:
        _, first, last = rng.choice(people)
        kind = rng.randrange(4)
        if kind == 0:
            return first[: rng.randint(1, 4)]
        if kind == 1:
            return last[: rng.randint(1, 4)]
        if kind == 2:
            return f"{first} {last}"
        return f"{first[:2]} {last[:2]}"

    timings: list[float] = []
    found = 0
    for _ in range(args.searches):
        searcher, query = rng.choice(people)[0], term()
        started = time.perf_counter()
        body = search_users(searcher, query, 10)
        timings.append((time.perf_counter() - started) * 1000)
        found += len(body["results"])
    timings.sort()
    p50 = statistics.median(timings)
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    print(
        f"search: {args.searches} searches, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {timings[-1]:.1f} ms, {found / args.searches:.1f} results on average"
    )


if __name__ == "__main__":
    main()
