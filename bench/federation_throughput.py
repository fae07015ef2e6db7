"""Federation throughput, this server beside Synapse, in one run:

- inbound: PDUs/s a server accepts from a peer (transactions of 50 messages, each sent
  once the previous one's last message can be read on the server: the rate a server
  keeps up with, not how fast it can queue);
- outbound fan-out: a local user sends messages into a room joined by users of 10 other
  servers; the time until every server has every message (messages/s), and each
  message's delivery time to each server (p50/p99).

The peers are small pretend servers (tests/e2e/peer.py: HTTPS on 127.0.0.1 with a certificate
from the synapse-pair CA, their own signing keys, joining through make_join/send_join and
sending signed transactions, as any server does); the servers measured are this one
(`manage.py serve` with a TLS federation listener) and Synapse A of the shared
synapse-pair. Usage:

    .venv/bin/python bench/federation_throughput.py [--transactions 10] [--messages 100]
        [--peers 10] [--pair ../shared/interop/synapse-pair]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.federation_bench import Client, pair  # noqa: E402
from tests.e2e.peer import Peer  # noqa: E402
from tests.e2e.server import federating_instance  # noqa: E402

PDUS_PER_TRANSACTION = 50
SYNAPSE_A = ("http://127.0.0.1:18118", "localhost:18448")


def can_read(client: Client, room_id: str, event_id: str) -> bool:
    path = f"/_matrix/client/v3/rooms/{quote(room_id)}/event/{quote(event_id)}"
    return client.http.get(path).status_code == 200


def inbound(base_url: str, server_name: str, certs: Path, transactions: int) -> float:
    """PDUs/s accepted from one peer."""
    owner = Client(base_url, f"owner{secrets.token_hex(4)}")
    room_id = owner.call("POST", "/createRoom", {"preset": "public_chat"})["room_id"]
    peer = Peer(certs)
    try:
        peer.join(server_name, room_id)
        started = time.perf_counter()
        for n in range(transactions):
            built = peer.messages(
                [f"in {n}.{i} {secrets.token_hex(3)}" for i in range(PDUS_PER_TRANSACTION)]
            )
            peer.send_transaction([pdu for _, pdu in built])
            last = built[-1][0]
            deadline = time.monotonic() + 120
            while not can_read(owner, room_id, last):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{server_name} never showed {last}")
                time.sleep(0.02)
        return transactions * PDUS_PER_TRANSACTION / (time.perf_counter() - started)
    finally:
        peer.close()


def fan_out(
    base_url: str, server_name: str, certs: Path, peers: int, messages: int
) -> tuple[float, float, float]:
    """Messages/s until every peer has every message; per-delivery p50/p99 (ms)."""
    sender = Client(base_url, f"sender{secrets.token_hex(4)}")
    room_id = sender.call("POST", "/createRoom", {"preset": "public_chat"})["room_id"]
    servers = [Peer(certs) for _ in range(peers)]
    try:
        for peer in servers:
            peer.join(server_name, room_id)
        time.sleep(1)  # the joins' own traffic settles
        sent_at: dict[str, float] = {}
        started = time.perf_counter()
        for n in range(messages):
            text = f"out {n} {secrets.token_hex(3)}"
            sent_at[text] = time.perf_counter()
            path = f"/rooms/{quote(room_id)}/send/m.room.message/{secrets.token_hex(6)}"
            sender.call("PUT", path, {"msgtype": "m.text", "body": text})
        deadline = time.monotonic() + 300
        while any(len(p.received.keys() & sent_at.keys()) < messages for p in servers):
            if time.monotonic() > deadline:
                raise RuntimeError("not every server got every message")
            time.sleep(0.02)
        elapsed = max(max(p.received[t] for t in sent_at) for p in servers) - started
        delays = [(p.received[t] - sent_at[t]) * 1000 for p in servers for t in sent_at]
        cuts = statistics.quantiles(delays, n=100)
        return messages / elapsed, cuts[49], cuts[98]
    finally:
        for peer in servers:
            peer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=10)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--peers", type=int, default=10)
    parser.add_argument(
        "--pair",
        type=Path,
        default=Path(
            os.environ.get("INTEROP_SYNAPSE_PAIR", ROOT.parent / "shared/interop/synapse-pair")
        ),
    )
    args = parser.parse_args()
    data = ROOT / ".synapse-pair"
    started_a = "a: running" not in pair(args.pair, data, "status")
    if started_a:
        pair(args.pair, data, "up", "a")
    work = Path(tempfile.mkdtemp(prefix="fedthroughput-"))
    certs = work / "certs"
    pair(args.pair, data, "cert", str(certs))
    server = federating_instance(work / "hs", certs, MATRIXHS_PRESENCE_ENABLED="false")
    (work / "hs").mkdir()
    server.start()
    try:
        targets = {
            "matrixhs": (server.base_url, server.server_name),
            "Synapse": SYNAPSE_A,
        }
        rows = []
        for label, (base_url, name) in targets.items():
            rate_in = inbound(base_url, name, certs, args.transactions)
            rate_out, p50, p99 = fan_out(base_url, name, certs, args.peers, args.messages)
            rows.append((label, rate_in, rate_out, p50, p99))
        print(
            f"{'server':<10} {'inbound PDUs/s':>15} {'fan-out msg/s':>14} "
            f"{'delivery p50 ms':>16} {'p99 ms':>8}"
        )
        for label, rate_in, rate_out, p50, p99 in rows:
            print(f"{label:<10} {rate_in:15.1f} {rate_out:14.1f} {p50:16.1f} {p99:8.1f}")
        print(
            f"(inbound: {args.transactions} transactions of {PDUS_PER_TRANSACTION} messages "
            f"from one server; fan-out: {args.messages} messages to {args.peers} servers)"
        )
    finally:
        server.stop()
        if started_a:
            pair(args.pair, data, "down", "a")


if __name__ == "__main__":
    main()
