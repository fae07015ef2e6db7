"""Transactions other servers send us (PUT /send/{txnId}): each is processed once, its
PDUs in order, and a resend of the same (origin, txnId) gets the first answer back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import IntegrityError

from federation.actions.edus import receive_edus
from federation.actions.inbound import Remote, Verifier, receive_pdus
from federation.models import InboundTransaction
from federation.queries.graph import acl_allows
from matrixhs.errors import JsonDict
from matrixhs.time import now_ms
from rooms.models import Room

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@contextmanager
def _one_at_a_time(origin: str) -> Iterator[None]:
    """A server's transactions are processed in turn in this process (its sender has one
    in flight at a time anyway; a retry racing its first try waits for the answer)."""
    with _locks_guard:
        lock = _locks.setdefault(origin, threading.Lock())
    with lock:
        yield


def _acl_allows(origin: str, pdu: Any) -> bool:
    room_id = pdu.get("room_id") if isinstance(pdu, dict) else None
    if not isinstance(room_id, str):
        return True
    room = Room.objects.filter(room_id=room_id).first()
    return room is None or acl_allows(room, origin)


def receive_transaction(
    origin: str,
    txn_id: str,
    pdus: list[Any],
    remote: Remote,
    verify: Verifier,
    edus: list[Any] | None = None,
) -> JsonDict:
    """The answer to a transaction: ``{"pdus": {event_id: {} or {"error": ...}}}``; its
    EDUs are applied after its PDUs.

    PDUs in a room whose server ACL denies ``origin`` are dropped unanswered.
    """
    with _one_at_a_time(origin):
        done = InboundTransaction.objects.filter(origin=origin, txn_id=txn_id).first()
        if done is not None:
            return done.response  # type: ignore[no-any-return]
        allowed = [pdu for pdu in pdus if _acl_allows(origin, pdu)]
        answer: JsonDict = {"pdus": receive_pdus(origin, allowed, remote, verify)}
        receive_edus(origin, edus or [])
        try:
            InboundTransaction.objects.create(
                origin=origin, txn_id=txn_id, response=answer, received_ms=now_ms()
            )
        except IntegrityError:  # another process answered it meanwhile
            pass
        return answer
