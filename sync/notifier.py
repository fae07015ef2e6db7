"""Wake-ups: "a stream advanced for these users" (DESIGN: Sync and notification).

A writer calls :func:`notify_users_on_commit` inside its transaction; once it commits,
every waiting /sync of those users is woken through the channel layer (in-process in the
embedded mode, Redis across processes in the scaled mode). A wake-up carries no data:
the woken request recomputes its answer from the database, so a lost wake-up only
delays an answer until its timeout.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

WAKE_UP = {"type": "stream.advanced"}


def group_for_user(user_id: str) -> str:
    """The channel-layer group of a user's waiting requests (group names are ASCII)."""
    return "u." + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:32]


def notify_users(user_ids: Iterable[str]) -> None:
    """Wake the waiting requests of ``user_ids`` now (call after commit)."""
    layer = get_channel_layer()
    if layer is None:
        return
    for user_id in set(user_ids):
        try:
            async_to_sync(layer.group_send)(group_for_user(user_id), WAKE_UP)
        except Exception:  # a lost wake-up only delays a reply until its timeout
            logger.warning("Could not send a wake-up to %s", user_id, exc_info=True)


def notify_users_on_commit(user_ids: Iterable[str]) -> None:
    """Wake the waiting requests of ``user_ids`` once the current transaction commits."""
    targets = list(user_ids)
    if targets:
        transaction.on_commit(lambda: notify_users(targets))
