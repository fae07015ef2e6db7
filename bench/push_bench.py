"""What push rule evaluation costs a send, in a room of many local members.

    .venv/bin/python bench/push_bench.py [--members 1000 --messages 100] \
        [--database-url postgres://postgres@127.0.0.1:5432/postgres]

Runs in-process on a fresh database: SQLite in a temporary data dir, or with
``--database-url`` a new PostgreSQL database on that server, dropped afterwards (an
inherited DATABASE_URL is ignored, so no existing database is touched). Registers
``--members`` users (no passwords), puts them all in one room, then sends
``--messages`` plain messages (from rotating senders, through the same action as
PUT /send) with push evaluation off, then on, alternating twice, and prints messages/s
of each and the ratio. Every message notifies all the other members
(".m.rule.message"): afterwards every member's unread count must be the number of
messages others sent with evaluation on, or the bench fails. On PostgreSQL the tables
are analyzed before timing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.servers import run_in_scratch_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    run_in_scratch_database(args.database_url, "push_bench", lambda: run_bench(args))


def run_bench(args: argparse.Namespace) -> None:
    os.environ.setdefault("MATRIXHS_DATA_DIR", tempfile.mkdtemp(prefix="push-bench-"))
    os.environ.setdefault("MATRIXHS_SERVER_NAME", "bench.test")
    os.environ["DJANGO_SETTINGS_MODULE"] = "matrixhs.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import override_settings

    from accounts.actions.users import do_register_user
    from matrixhs.streams import Stream, current_position
    from push.models import Notification, NotificationExclusion, SharedNotification
    from push.queries import unread_counts
    from rooms.actions.create import do_create_room
    from rooms.actions.membership import do_join
    from rooms.events import create_and_send_event

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    with override_settings(MATRIXHS_PUSH_EVALUATION=False):
        users = [do_register_user(f"member{i}", None) for i in range(args.members)]
        room_id = do_create_room(users[0], {"preset": "public_chat"})
        for user in users[1:]:
            do_join(user, room_id)
    print(f"setup: {args.members} members joined in {time.perf_counter() - started:.1f}s")

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    #: Messages each member sent with evaluation on: the others' count them unread.
    sent_on: dict[str, int] = {user.user_id: 0 for user in users}

    def run(evaluate: bool, count: int) -> float:
        with override_settings(MATRIXHS_PUSH_EVALUATION=evaluate):
            begin = time.perf_counter()
            for i in range(count):
                sender = users[i % len(users)].user_id
                content = {"msgtype": "m.text", "body": f"message {i}"}
                create_and_send_event(sender, room_id, "m.room.message", content)
                sent_on[sender] += evaluate
            return count / (time.perf_counter() - begin)

    run(True, 3)  # compiles every member's ruleset once
    rates: dict[bool, list[float]] = {False: [], True: []}
    for evaluate in (False, True, False, True):
        rates[evaluate].append(run(evaluate, args.messages))
    off, on = max(rates[False]), max(rates[True])
    evaluated = 3 + 2 * args.messages
    rows = sum(m.objects.count() for m in (Notification, SharedNotification, NotificationExclusion))
    print(f"evaluation off: {off:.1f} messages/s ({1000 / off:.1f} ms/send)")
    print(f"evaluation on:  {on:.1f} messages/s ({1000 / on:.1f} ms/send)")
    print(f"notification rows stored per send: {rows / evaluated:.1f}")
    check_unread(users, room_id, evaluated, sent_on, unread_counts, current_position(Stream.EVENTS))
    print(f"ratio on/off: {on / off:.2f}")


def check_unread(
    users: list[Any],
    room_id: str,
    evaluated: int,
    sent_on: dict[str, int],
    unread_counts: Any,
    until: int,
) -> None:
    """Every member's unread count is the messages the others sent with evaluation on."""
    from rooms.models import Room

    room_pk = Room.objects.get(room_id=room_id).pk
    wrong = 0
    for user in users:
        threads = unread_counts(user.user_id, [room_pk], until).get(room_pk, {})
        expected = evaluated - sent_on[user.user_id]
        if threads.get("main", (0, 0)) != (expected, 0) or set(threads) - {"main"}:
            wrong += 1
    if wrong:
        sys.exit(f"unread counts wrong for {wrong} of {len(users)} members")
    print(f"unread counts checked: all {len(users)} members right")


if __name__ == "__main__":
    main()
