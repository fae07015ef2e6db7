"""Delivery of notifications to http pushers' push gateways (push gateway API v1).

Each notification for a user with http pushers is queued (:class:`PushDelivery`) in the
transaction that stores the event, and the pushers are woken after commit
(push.sender: a Celery task each in the scaled mode, in-process threads in the embedded
mode). :func:`drain` posts a pusher's queue in order, one notification per request,
holding the pusher by a lease in the database so that one drain at a time runs for it.
A notification leaves the queue only once the gateway answered 200, so a drain that
dies midway leaves it for the next one (after the lease runs out). On a network error,
a 5xx or a 429 the pusher is backed off exponentially, from RETRY_MIN_MS to
RETRY_MAX_MS; a pushkey the gateway rejects removes the pusher (spec: "Homeservers must
cease sending notification requests for these pushkeys and remove the associated
pushers"); another 4xx drops that notification only.

Gateway URLs are reached through matrixhs.outbound: never a private address unless
MATRIXHS_OUTBOUND_IP_ALLOWLIST allows it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F

from matrixhs.errors import JsonDict
from matrixhs.outbound import outbound_client
from matrixhs.streams import Stream, current_position
from matrixhs.time import now_ms
from push.evaluator import Outcome
from push.models import PushDelivery, Pusher
from push.queries import unread_counts
from rooms.models import Event, Room, RoomMembership

logger = logging.getLogger(__name__)

RETRY_MIN_MS = 5_000
RETRY_MAX_MS = 3_600_000
TIMEOUT_S = 15.0
#: Notifications posted per drain before the pusher is handed back (fairness).
BATCH = 100

Post = Callable[[str, JsonDict], httpx.Response]


def enqueue_deliveries(room: Room, event: Event, notified: Mapping[str, Outcome]) -> None:
    """Queue the notifications just stored (user -> the outcome of their rules) for their
    users' http pushers, and wake those pushers after commit. Few members have pushers:
    each of theirs gets a row, whether their notification is their own or shared."""
    if not notified:
        return
    pushers = [
        (pk, user_id)
        for pk, user_id in Pusher.objects.filter(
            kind="http",
            user__user_id__in=RoomMembership.objects.filter(room=room).values("user_id"),
        ).values_list("pk", "user__user_id")
        if user_id in notified
    ]
    if not pushers:
        return
    ts = now_ms()
    PushDelivery.objects.bulk_create(
        [
            PushDelivery(
                pusher_id=pk,
                room=room,
                event_id=event.event_id,
                stream_ordering=event.stream_ordering,
                highlight=notified[user_id].highlight,
                actions=notified[user_id].actions,
                created_ts=ts,
            )
            for pk, user_id in pushers
        ],
        ignore_conflicts=True,
    )
    keys = {str(pk) for pk, _ in pushers}
    transaction.on_commit(lambda: wake_pushers(keys))


def wake_pushers(keys: set[str]) -> None:
    from push.sender import wake

    wake(keys)


def _default_post(url: str, body: JsonDict) -> httpx.Response:
    with outbound_client(timeout=TIMEOUT_S) as client:
        return client.post(url, json=body)


def _claim(pusher_id: int, now: int) -> bool:
    return bool(
        Pusher.objects.filter(pk=pusher_id, lease_until_ms__lt=now, retry_at_ms__lte=now).update(
            lease_until_ms=now + settings.MATRIXHS_QUEUE_LEASE_S * 1000
        )
    )


def drain(key: str, post: Post | None = None) -> int:
    """Post the pusher's queued notifications in order until the queue is empty or the
    gateway fails. Returns how many the gateway acknowledged."""
    post = post or _default_post
    pusher_id = int(key)
    if not _claim(pusher_id, now_ms()):
        return 0
    delivered = 0
    try:
        for _ in range(BATCH):
            pusher = Pusher.objects.select_related("user").filter(pk=pusher_id).first()
            item = (
                PushDelivery.objects.filter(pusher_id=pusher_id).order_by("stream_ordering").first()
            )
            if pusher is None or item is None:
                return delivered
            outcome = _deliver(pusher, item, post)
            if outcome == "retry" or outcome == "removed":
                return delivered
            PushDelivery.objects.filter(pk=item.pk).delete()
            delivered += outcome == "sent"
        wake_pushers({key})  # more left: another round, after the others
        return delivered
    finally:
        Pusher.objects.filter(pk=pusher_id).update(lease_until_ms=0)


def _deliver(pusher: Pusher, item: PushDelivery, post: Post) -> str:
    """Post one notification: "sent", "dropped" (refused for good), "retry" (backed
    off) or "removed" (the pushkey was rejected, the pusher is gone)."""
    url = pusher.data.get("url")
    body = notify_body(pusher, item)
    if body is None:
        return "dropped"  # the event is gone (purged room)
    try:
        response = post(str(url), body)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        _back_off(pusher, str(exc))
        return "retry"
    if response.status_code >= 500 or response.status_code == 429:
        _back_off(pusher, f"HTTP {response.status_code}")
        return "retry"
    if response.status_code != 200:
        logger.warning("Push gateway %s refused a notification: %s", url, response.status_code)
        return "dropped"
    if pusher.pushkey in _rejected(response):
        logger.info("Push gateway %s rejected a pushkey: removing the pusher", url)
        Pusher.objects.filter(pk=pusher.pk).delete()
        return "removed"
    if pusher.failures or pusher.retry_interval_ms:
        Pusher.objects.filter(pk=pusher.pk).update(failures=0, retry_interval_ms=0, retry_at_ms=0)
    return "sent"


def _rejected(response: httpx.Response) -> list[Any]:
    try:
        answer = response.json()
    except ValueError:
        return []
    rejected = answer.get("rejected") if isinstance(answer, dict) else None
    return rejected if isinstance(rejected, list) else []


def _back_off(pusher: Pusher, reason: str) -> None:
    interval = min(RETRY_MAX_MS, max(RETRY_MIN_MS, pusher.retry_interval_ms * 2))
    delay = int(interval * random.uniform(0.8, 1.2))  # noqa: S311 (jitter, not security)
    logger.info(
        "Push gateway for pusher %s failed (%s); next try in %d s", pusher.pk, reason, delay // 1000
    )
    Pusher.objects.filter(pk=pusher.pk).update(
        retry_interval_ms=interval, retry_at_ms=now_ms() + delay, failures=F("failures") + 1
    )


def _tweaks(actions: list[Any]) -> JsonDict:
    tweaks: JsonDict = {}
    for action in actions:
        if isinstance(action, dict) and isinstance(action.get("set_tweak"), str):
            tweaks[action["set_tweak"]] = action.get("value", True)
    return tweaks


def _unread_total(user_id: str) -> int:
    rooms = list(
        RoomMembership.objects.filter(user_id=user_id, membership="join").values_list(
            "room_id", flat=True
        )
    )
    counts = unread_counts(user_id, rooms, current_position(Stream.EVENTS))
    return sum(c[0] for threads in counts.values() for c in threads.values())


def notify_body(pusher: Pusher, item: PushDelivery) -> JsonDict | None:
    """The body of POST /_matrix/push/v1/notify for one queued notification, in the
    pusher's format (``event_id_only``: no event details). None if the event is gone."""
    from rooms.events import load_pdus

    pdu = load_pdus([item.event_id]).get(item.event_id)
    if pdu is None:
        return None
    data = {k: v for k, v in pusher.data.items() if k != "url"}
    device: JsonDict = {
        "app_id": pusher.app_id,
        "pushkey": pusher.pushkey,
        "pushkey_ts": pusher.created_ts // 1000,
        "data": data,
        "tweaks": _tweaks(item.actions),
    }
    unread = _unread_total(pusher.user.user_id)
    notification: JsonDict = {
        "event_id": item.event_id,
        "room_id": pdu["room_id"],
        "prio": "high" if item.highlight or "sound" in device["tweaks"] else "low",
        "counts": {"unread": unread} if unread else {},
        "devices": [device],
    }
    if data.get("format") != "event_id_only":
        notification.update(_event_details(pusher.user.user_id, pdu))
    return {"notification": notification}


def _event_details(user_id: str, pdu: JsonDict) -> JsonDict:
    from rooms.events import current_state_ids, load_pdus

    details: JsonDict = {"type": pdu["type"], "sender": pdu["sender"]}
    if isinstance(pdu.get("content"), dict):
        details["content"] = pdu["content"]
    if pdu["type"] == "m.room.member":
        details["user_is_target"] = pdu.get("state_key") == user_id
    room = Room.objects.filter(room_id=pdu["room_id"]).first()
    if room is None:
        return details
    name_id = current_state_ids(room, [("m.room.name", "")]).get(("m.room.name", ""))
    name = load_pdus([name_id]).get(name_id, {}).get("content", {}).get("name") if name_id else None
    if isinstance(name, str) and name:
        details["room_name"] = name
    sender_name = (
        RoomMembership.objects.filter(room=room, user_id=pdu["sender"])
        .values_list("displayname", flat=True)
        .first()
    )
    if sender_name:
        details["sender_display_name"] = sender_name
    return details


def due_pushers(now: int | None = None) -> list[str]:
    """Pushers with queued notifications that may be tried now."""
    now = now_ms() if now is None else now
    queued = set(PushDelivery.objects.values_list("pusher_id", flat=True).distinct())
    ready = Pusher.objects.filter(pk__in=queued, retry_at_ms__lte=now, lease_until_ms__lt=now)
    return [str(pk) for pk in ready.values_list("pk", flat=True)]


def send_due() -> None:
    """Periodic job: wake the pushers with work due (retries after a backoff, and what a
    lost wake-up or a dead worker left behind)."""
    due = due_pushers()
    if due:
        wake_pushers(set(due))
