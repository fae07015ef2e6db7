"""Sending the outbound queue: transactions to one destination at a time, in order.

``drain(destination)`` is what the Celery task and the in-process sender run. It holds
the destination by a lease in the database (one transaction in flight per destination,
across processes), sends up to 50 PDUs and 100 EDUs per transaction in the order they
were queued, and deletes them only once the destination acknowledged the transaction. A transaction
that may have reached the destination before a crash is resent with the same ID, so the
destination answers it from its cache. On failure the destination is backed off
(exponentially from MATRIXHS_FEDERATION_RETRY_MIN_S to _MAX_S); a request from that
server, or a success, resets it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from federation.models import Destination, OutboundEdu, OutboundPdu
from matrixhs.errors import JsonDict
from matrixhs.time import now_ms
from rooms.events import load_pdus

logger = logging.getLogger(__name__)

MAX_PDUS_PER_TRANSACTION = 50
MAX_EDUS_PER_TRANSACTION = 100
#: Transactions sent to one destination before the sender moves on to the others (and
#: comes back): a busy room's stream to one server never starves the rest.
TRANSACTIONS_PER_TURN = 4
#: A queue longer than this for one room after an outage is cut to its newest events:
#: the destination fetches the gap itself (get_missing_events), as the spec intends.
CATCH_UP_KEEP = 20
CATCH_UP_THRESHOLD = 200

Sender = Callable[[str, str, JsonDict], Any]
"""``send(destination, txn_id, transaction_body)``: raises on failure."""


def _default_sender(destination: str, txn_id: str, body: JsonDict) -> Any:
    from federation.transport.client import federation_client

    return federation_client().send_transaction(destination, txn_id, body)


def due_destinations(now: int | None = None) -> list[str]:
    """Destinations with queued events or EDUs that may be tried now."""
    now = now_ms() if now is None else now
    queued = set(OutboundPdu.objects.values_list("destination", flat=True).distinct())
    queued |= set(OutboundEdu.objects.values_list("destination", flat=True).distinct())
    waiting = set(
        Destination.objects.filter(server_name__in=queued, retry_at_ms__gt=now).values_list(
            "server_name", flat=True
        )
    )
    return sorted(queued - waiting)


def _claim(destination: str, now: int) -> bool:
    Destination.objects.get_or_create(server_name=destination)
    return bool(
        Destination.objects.filter(server_name=destination, lease_until_ms__lt=now)
        .filter(retry_at_ms__lte=now)
        .update(lease_until_ms=now + settings.MATRIXHS_QUEUE_LEASE_S * 1000)
    )


def _release(destination: str) -> None:
    Destination.objects.filter(server_name=destination).update(lease_until_ms=0)


def drain(destination: str, send: Sender | None = None) -> int:
    """Send ``destination`` what is queued for it, a transaction at a time, until the
    queue is empty or a transaction fails; after TRANSACTIONS_PER_TURN transactions the
    destination is woken again to go on after the others. Returns the number of PDUs
    delivered."""
    send = send or _default_sender
    if not _claim(destination, now_ms()):
        return 0
    delivered = 0
    more = False
    try:
        for _ in range(TRANSACTIONS_PER_TURN):
            txn_id, event_ids, edus = _next_transaction(destination)
            if not txn_id:
                return delivered
            pdus = load_pdus(event_ids)
            body: JsonDict = {
                "origin": settings.MATRIXHS_SERVER_NAME,
                "origin_server_ts": now_ms(),
                "pdus": [pdus[e] for e in event_ids if e in pdus],
                "edus": edus,
            }
            try:
                send(destination, str(txn_id), body)
            except Exception as exc:  # any failure: the queue stays, the server waits
                _back_off(destination, exc)
                return delivered
            OutboundPdu.objects.filter(destination=destination, txn_id=txn_id).delete()
            OutboundEdu.objects.filter(destination=destination, txn_id=txn_id).delete()
            delivered += len(event_ids)
            mark_reachable(destination)
        more = True
        return delivered
    finally:
        _release(destination)
        if more:
            from federation.sender import wake

            wake({destination})


def _next_transaction(destination: str) -> tuple[int, list[str], list[JsonDict]]:
    """The transaction to send next: one already started (a resend), or the next up to
    50 queued events and 100 EDUs under a new transaction ID (0: nothing to send)."""
    with transaction.atomic():
        txn_id = _started(destination)
        if not txn_id:
            _catch_up(destination)
            OutboundEdu.objects.filter(
                destination=destination, txn_id__isnull=True, expires_ms__gt=0
            ).filter(expires_ms__lt=now_ms()).delete()
            pdus = list(
                OutboundPdu.objects.filter(destination=destination)
                .order_by("id")
                .values_list("id", flat=True)[:MAX_PDUS_PER_TRANSACTION]
            )
            edus = list(
                OutboundEdu.objects.filter(destination=destination)
                .order_by("id")
                .values_list("id", flat=True)[:MAX_EDUS_PER_TRANSACTION]
            )
            if not pdus and not edus:
                return 0, [], []
            row = Destination.objects.select_for_update().get(server_name=destination)
            txn_id = row.next_txn_id
            Destination.objects.filter(pk=row.pk).update(next_txn_id=F("next_txn_id") + 1)
            OutboundPdu.objects.filter(id__in=pdus).update(txn_id=txn_id)
            OutboundEdu.objects.filter(id__in=edus).update(txn_id=txn_id)
        event_ids = list(
            OutboundPdu.objects.filter(destination=destination, txn_id=txn_id)
            .order_by("id")
            .values_list("event_id", flat=True)
        )
        edus = [
            {"edu_type": edu_type, "content": content}
            for edu_type, content in OutboundEdu.objects.filter(
                destination=destination, txn_id=txn_id
            )
            .order_by("id")
            .values_list("edu_type", "content")
        ]
        return txn_id, event_ids, edus


def _started(destination: str) -> int:
    """The ID of a transaction started and not acknowledged (0: none)."""
    ids = [
        OutboundPdu.objects.filter(destination=destination, txn_id__isnull=False)
        .order_by("id")
        .values_list("txn_id", flat=True)
        .first(),
        OutboundEdu.objects.filter(destination=destination, txn_id__isnull=False)
        .order_by("id")
        .values_list("txn_id", flat=True)
        .first(),
    ]
    return min((i for i in ids if i), default=0)


def _catch_up(destination: str) -> None:
    """After a long outage, keep only each room's newest queued events (the destination
    fetches the gap itself). A destination that did not fail gets everything, however
    long its queue (a burst of messages is no outage)."""
    if not Destination.objects.filter(server_name=destination, failures__gt=0).exists():
        return
    if OutboundPdu.objects.filter(destination=destination).count() <= CATCH_UP_THRESHOLD:
        return
    rooms = (
        OutboundPdu.objects.filter(destination=destination)
        .values_list("room_id", flat=True)
        .distinct()
    )
    for room_id in rooms:
        keep = list(
            OutboundPdu.objects.filter(destination=destination, room_id=room_id)
            .order_by("-id")
            .values_list("id", flat=True)[:CATCH_UP_KEEP]
        )
        OutboundPdu.objects.filter(destination=destination, room_id=room_id).exclude(
            id__in=keep
        ).delete()


def _back_off(destination: str, exc: Exception) -> None:
    row = Destination.objects.get(server_name=destination)
    minimum = settings.MATRIXHS_FEDERATION_RETRY_MIN_S * 1000
    maximum = settings.MATRIXHS_FEDERATION_RETRY_MAX_S * 1000
    interval = min(maximum, max(minimum, row.retry_interval_ms * 2))
    delay = int(interval * random.uniform(0.8, 1.2))  # noqa: S311 (jitter, not security)
    logger.info("Federation to %s failed (%s); next try in %d s", destination, exc, delay // 1000)
    Destination.objects.filter(pk=row.pk).update(
        retry_interval_ms=interval,
        retry_at_ms=now_ms() + delay,
        failures=F("failures") + 1,
        last_error=str(exc)[:500],
    )


def do_reset_backoff(destination: str) -> bool:
    """An operator asks to try a backed-off destination again now (the periodic sender
    then drains its queue). Returns whether it was backed off."""
    return bool(
        Destination.objects.filter(server_name=destination)
        .filter(Q(retry_interval_ms__gt=0) | Q(retry_at_ms__gt=0))
        .update(retry_interval_ms=0, retry_at_ms=0, failures=0)
    )


def mark_reachable(destination: str) -> bool:
    """The destination answered us (or sent us a request): no more backoff. Returns
    whether it was backed off, so that its queue can be looked at now."""
    changed = (
        Destination.objects.filter(server_name=destination)
        .filter(Q(retry_interval_ms__gt=0) | Q(retry_at_ms__gt=0))
        .update(retry_interval_ms=0, retry_at_ms=0, failures=0)
    )
    Destination.objects.filter(server_name=destination).update(last_success_ms=now_ms())
    return bool(changed)


def send_due() -> None:
    """Periodic job: wake the senders of every destination with work due (retries after
    a backoff, and anything a lost wake-up left behind)."""
    from federation.sender import wake

    due = due_destinations()
    if due:
        wake(set(due))
