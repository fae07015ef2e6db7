"""What waking the waiting /sync requests of one process costs, in-process.

    .venv/bin/python bench/wakeup_bench.py [--members 1000] [--waiters 1000] [--rounds 5]

One message in a room of ``--members`` local users, ``--waiters`` of whom have a /sync
waiting: the time from the wake-up call until every waiter has been woken, through the
embedded mode's local waiters (matrixhs.notifier) and, for comparison, through Channels'
in-memory layer (one group_send per member, as the embedded mode did before). Prints
the median of ``--rounds`` rounds of each.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


async def through_layer(members: list[str], waiters: list[str]) -> float:
    from channels.layers import InMemoryChannelLayer

    from matrixhs.notifier import WAKE_UP, group_for_user

    layer = InMemoryChannelLayer()
    channels = []
    for user_id in waiters:
        channel = await layer.new_channel()
        await layer.group_add(group_for_user(user_id), channel)
        channels.append(channel)
    started = time.perf_counter()
    for group in sorted({group_for_user(user_id) for user_id in members}):
        await layer.group_send(group, WAKE_UP)
    await asyncio.gather(*(layer.receive(channel) for channel in channels))
    return time.perf_counter() - started


async def through_local_waiters(members: list[str], waiters: list[str]) -> float:
    from matrixhs.notifier import WakeUps, notify_users

    subscriptions = [WakeUps(user_id) for user_id in waiters]
    for subscription in subscriptions:
        await subscription.__aenter__()
    started = time.perf_counter()
    notify_users(members)
    woken = await asyncio.gather(*(s.wait(30) for s in subscriptions))
    took = time.perf_counter() - started
    for subscription in subscriptions:
        await subscription.__aexit__()
    if not all(woken):
        raise SystemExit("a waiter was not woken")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--waiters", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("MATRIXHS_DATA_DIR", tempfile.mkdtemp(prefix="wakeup-bench-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "matrixhs.settings"
    import django

    django.setup()
    members = [f"@member{i}:bench.test" for i in range(args.members)]
    waiters = members[: args.waiters]
    for name, scenario in (
        ("local waiters (embedded mode)", through_local_waiters),
        ("in-memory channel layer", through_layer),
    ):
        runs = [asyncio.run(scenario(members, waiters)) for _ in range(args.rounds)]
        print(
            f"{name}: {statistics.median(runs) * 1000:.1f} ms to wake {len(waiters)} waiters "
            f"of {len(members)} members (median of {args.rounds})"
        )


if __name__ == "__main__":
    main()
