"""Server-side search latency (POST /search, room_events) over 100,000 messages.

    .venv/bin/python bench/search_bench.py [--messages 100000 --rooms 20 --proper 2000] \
        [--repeat 30]

Runs in-process on a fresh database: SQLite in a temporary data dir, or, when
``DATABASE_URL`` (or ``--database-url``) names a PostgreSQL server, a new database on
that server, dropped afterwards (no existing database is touched).

Filling: ``--users`` (5) users join ``--rooms`` (20) public rooms; the first ``--proper``
messages go through the send action (rooms/events.py: signing, auth, the index row),
and their rate is printed. The rest take a fast path, for a bounded run: rows written
in batches straight into the event table and the search index with the same columns
rooms/events.py writes (minimal unsigned PDUs, the room's current state group, stream
positions reserved from the events stream counter), so the index and every column the
search reads are as the send path leaves them.

Messages are 6-14 words drawn from a Zipf-like vocabulary, plus "meeting" in 20% of
them (a common word), "budget" in 1% and "zeppelin" in 20 messages (rare). Each search
runs ``--repeat`` times as the first user (a member of every room), through the same
function as the view (rooms.queries.search.search_room_events: SQL, visibility checks
and formatting of a 10-result page; the last case with the context matrix-js-sdk asks
for), and p50/p99 of the first page and p50 of the second are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.servers import run_in_scratch_database

COMMON, MIDDLE, RARE = "meeting", "budget", "zeppelin"
RARE_COUNT = 20
BATCH = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--proper", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()
    postgres = bool(args.database_url) and args.database_url.startswith("postgres")
    kind = "PostgreSQL, a fresh database" if postgres else "SQLite (embedded), fresh data dir"
    print(f"database: {kind}")
    run_in_scratch_database(args.database_url, "search_bench", lambda: run_bench(args))


def vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    syllables = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def message_texts(count: int, rng: random.Random) -> list[str]:
    words = vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(words))]
    rare_at = set(rng.sample(range(count), RARE_COUNT))
    texts = []
    for i in range(count):
        chosen = rng.choices(words, weights, k=rng.randint(6, 14))
        if rng.random() < 0.2:
            chosen.insert(rng.randrange(len(chosen)), COMMON)
        if rng.random() < 0.01:
            chosen.insert(rng.randrange(len(chosen)), MIDDLE)
        if i in rare_at:
            chosen.insert(rng.randrange(len(chosen)), RARE)
        texts.append(" ".join(chosen))
    return texts


def run_bench(args: argparse.Namespace) -> None:
    os.environ.setdefault("MATRIXHS_DATA_DIR", tempfile.mkdtemp(prefix="search-bench-"))
    os.environ.setdefault("MATRIXHS_SERVER_NAME", "bench.test")
    os.environ["DJANGO_SETTINGS_MODULE"] = "matrixhs.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import override_settings

    from accounts.actions.users import do_register_user
    from rooms.actions.create import do_create_room
    from rooms.actions.membership import do_join

    call_command("migrate", verbosity=0)
    rng = random.Random(20261205)  # noqa: S311 (reproducible text, not secrets)
    texts = message_texts(args.messages, rng)
    with override_settings(MATRIXHS_PUSH_EVALUATION=False):
        users = [do_register_user(f"user{i}", None) for i in range(args.users)]
        room_ids = [do_create_room(users[0], {"preset": "public_chat"}) for _ in range(args.rooms)]
        for user in users[1:]:
            for room_id in room_ids:
                do_join(user, room_id)
        fill_proper(users, room_ids, texts[: args.proper])
    fill_fast(users, room_ids, texts[args.proper :])
    searches(users[0].user_id, args.repeat)


def fill_proper(users: list, room_ids: list[str], texts: list[str]) -> None:
    from rooms.events import create_and_send_event

    started = time.perf_counter()
    for i, text in enumerate(texts):
        create_and_send_event(
            users[i % len(users)].user_id,
            room_ids[i % len(room_ids)],
            "m.room.message",
            {"msgtype": "m.text", "body": text},
        )
    took = time.perf_counter() - started
    if texts:
        print(f"fill: {len(texts)} messages through the send action, {len(texts) / took:.0f}/s")


def fill_fast(users: list, room_ids: list[str], texts: list[str]) -> None:
    """The documented fast path (module docstring)."""
    from django.db import connection, transaction

    from matrixhs.models import StreamCounter
    from rooms.models import Event, Room
    from rooms.search_index import SEARCH_TABLE, searchable

    rooms = list(Room.objects.filter(room_id__in=room_ids))
    depth = {
        r.pk: Event.objects.filter(room=r).order_by("-depth").values_list("depth", flat=True)[0]
        for r in rooms
    }
    started = time.perf_counter()
    now = int(time.time() * 1000)
    for offset in range(0, len(texts), BATCH):
        chunk = texts[offset : offset + BATCH]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {StreamCounter._meta.db_table} SET value = value + %s "
                "WHERE name = 'events' RETURNING value",
                [len(chunk)],
            )
            first = cursor.fetchone()[0] - len(chunk) + 1
            events, index = [], []
            for n, text in enumerate(chunk):
                room = rooms[(offset + n) % len(rooms)]
                sender = users[(offset + n) % len(users)].user_id
                depth[room.pk] += 1
                content = {"msgtype": "m.text", "body": text}
                pdu = {
                    "type": "m.room.message",
                    "room_id": room.room_id,
                    "sender": sender,
                    "content": content,
                    "origin_server_ts": now + offset + n,
                    "depth": depth[room.pk],
                    "prev_events": [],
                    "auth_events": [],
                }
                event_id = f"$bench{secrets.token_urlsafe(18)}"
                stream = first + n
                events.append(
                    (
                        event_id,
                        room.pk,
                        sender,
                        depth[room.pk],
                        pdu["origin_server_ts"],
                        stream,
                        json.dumps(pdu, separators=(",", ":"), sort_keys=True),
                        room.current_state_group_id,
                        now,
                    )
                )
                index.append((stream, room.pk, text))
            cursor.executemany(
                f"INSERT INTO {Event._meta.db_table} (event_id, room_id, type, sender, depth, "
                "origin_server_ts, stream_ordering, json, outlier, soft_failed, "
                "state_group_before_id, state_group_id, received_ts) VALUES "
                "(%s, %s, 'm.room.message', %s, %s, %s, %s, %s, false, false, %s, %s, %s)",
                [(*e[:8], e[7], e[8]) for e in events],
            )
            cursor.execute(
                f"SELECT stream_ordering, id FROM {Event._meta.db_table} "
                "WHERE stream_ordering BETWEEN %s AND %s",
                [first, first + len(chunk) - 1],
            )
            pks = dict(cursor.fetchall())
            rows = []
            for stream, room_pk, text in index:
                key, value = searchable("m.room.message", None, {"body": text}) or ("", "")
                rows.append((pks[stream], room_pk, key, value, stream))
            cursor.executemany(
                f"INSERT INTO {SEARCH_TABLE} (event_id, room_id, key, value, stream_ordering) "
                "VALUES (%s, %s, %s, %s, %s)",
                rows,
            )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    took = time.perf_counter() - started
    print(f"fill: {len(texts)} messages through the fast path in {took:.1f}s")


def searches(user_id: str, repeat: int) -> None:
    from rooms.queries.format import Viewer
    from rooms.queries.search import Criteria, search_room_events
    from rooms.search_index import parse_term

    viewer = Viewer(user_id)
    cases = [
        (COMMON, "rank"),
        (COMMON, "recent"),
        (MIDDLE, "rank"),
        (MIDDLE, "recent"),
        (RARE, "rank"),
        (RARE, "recent"),
        (f"{COMMON} {MIDDLE}", "rank"),
        (f"{COMMON} -{MIDDLE}", "recent"),
        (COMMON, "recent+context"),  # what matrix-js-sdk asks: 1 event each side, profiles
    ]
    print(f"searches ({repeat} each, 10 results a page):")
    header = ("term", "order", "count", "p50 ms", "p99 ms", "page 2 p50")
    print("  {:<22} {:<14} {:>6} {:>8} {:>8} {:>11}".format(*header))
    for term, order in cases:
        criteria = Criteria(
            term=parse_term(term),
            by_rank=order == "rank",
            context=(1, 1, True) if order.endswith("+context") else None,
        )
        first, second, count = [], [], 0
        for _ in range(repeat):
            started = time.perf_counter()
            body = search_room_events(user_id, viewer, criteria, None)
            first.append((time.perf_counter() - started) * 1000)
            count = body["count"]
            if "next_batch" in body:
                started = time.perf_counter()
                search_room_events(user_id, viewer, criteria, body["next_batch"])
                second.append((time.perf_counter() - started) * 1000)
        page2 = f"{statistics.median(second):.1f}" if second else "-"
        print(
            f"  {term:<22} {order:<14} {count:>6} {statistics.median(first):>8.1f} "
            f"{percentile(first, 99):>8.1f} {page2:>11}"
        )


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
