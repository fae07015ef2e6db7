"""Push rules evaluated for a new event, in the transaction that stores it.

rooms/events.py calls :func:`do_evaluate_event` for every live event it persists (sent
here or received over federation). Each local member of the room but the sender (and a
local user invited by the event) gets the event through their ruleset; a rule that
notifies stores a :class:`push.models.Notification` at the event's stream position.

A user's ruleset is the copy of it in their ``m.push_rules`` account data, rewritten on
every change by push.actions.rules (built by push.queries.push_rules_content); a user who
never changed anything has none and gets the server defaults. Compiled rulesets are kept
in this process keyed by (user, position of that account data): a change moves the
position, so a stale entry is never used, whichever process made the change.

Notifications for users with http pushers are queued for delivery in the same
transaction (push.actions.delivery).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection

from accounts.models import AccountData, User
from accounts.queries import ignored_in
from matrixhs.protocol.power_levels import PowerLevels
from matrixhs.time import now_ms
from push.actions.delivery import enqueue_deliveries
from push.evaluator import EventFacts, Member, Ruleset, compile_ruleset, evaluate, outcome_of
from push.models import Notification
from push.rules import default_rules
from rooms.models import Event, Room, RoomMembership

JsonDict = dict[str, Any]

_CACHE_SIZE = 20_000
_compiled: OrderedDict[tuple[str, int], Ruleset] = OrderedDict()


def _remember(key: tuple[str, int], rules: Ruleset) -> Ruleset:
    _compiled[key] = rules
    if len(_compiled) > _CACHE_SIZE:
        _compiled.popitem(last=False)
    return rules


def rulesets_of(versions: dict[str, int]) -> dict[str, Ruleset]:
    """The compiled ruleset of each user, given the position of their ``m.push_rules``
    account data (0: none): a query only for the rulesets not compiled yet."""
    user_ids = list(versions)
    found: dict[str, Ruleset] = {}
    missing: list[str] = []
    for user_id in user_ids:
        key = (user_id, versions[user_id])
        rules = _compiled.get(key)
        if rules is None:
            missing.append(user_id)
        else:
            _compiled.move_to_end(key)
            found[user_id] = rules
    stored = dict(
        AccountData.objects.filter(
            user__user_id__in=[u for u in missing if versions[u]],
            room_id="",
            type="m.push_rules",
        ).values_list("user__user_id", "content")
    )
    for user_id in missing:
        content = stored.get(user_id)
        if content is None:
            content = {"global": default_rules(user_id)}
        key = (user_id, versions[user_id])
        found[user_id] = _remember(key, compile_ruleset(content, user_id))
    return found


def thread_of(event: Event) -> str:
    """The thread an event belongs to for receipts and counts: its root, or "main"."""
    if event.rel_type == "m.thread" and event.relates_to:
        return str(event.relates_to)
    return "main"


_RECIPIENTS_SQL = """
SELECT m.user_id, m.membership, m.displayname, a.stream_id, i.content
FROM {membership} m
LEFT JOIN {user} u ON u.user_id = m.user_id
LEFT JOIN {account_data} a ON a.user_id = u.id AND a.room_id = '' AND a.type = 'm.push_rules'
LEFT JOIN {account_data} i
    ON i.user_id = u.id AND i.room_id = '' AND i.type = 'm.ignored_user_list'
WHERE m.room_id = %s AND m.membership IN ('join', 'invite')
"""


@dataclass
class Recipients:
    """The room's joined member count, and the local users to evaluate for: their
    display names and the positions of their rulesets."""

    joined: int = 0
    names: dict[str, str | None] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)


def _recipients(room: Room, pdu: JsonDict) -> Recipients:
    """Joined local members and the local invitee of an invite, never the sender nor
    those who ignore the sender (spec "Ignoring Users"), in one query."""
    suffix = f":{settings.MATRIXHS_SERVER_NAME}"
    sql = _RECIPIENTS_SQL.format(
        membership=RoomMembership._meta.db_table,
        user=User._meta.db_table,
        account_data=AccountData._meta.db_table,
    )
    found = Recipients()
    sender = pdu.get("sender")
    invitee = pdu.get("state_key") if pdu.get("type") == "m.room.member" else None
    with connection.cursor() as cursor:
        cursor.execute(sql, [room.pk])
        for user_id, membership, displayname, version, ignoring in cursor.fetchall():
            if membership == "join":
                found.joined += 1
            wanted = membership == "join" or user_id == invitee
            if (
                wanted
                and user_id.endswith(suffix)
                and user_id != sender
                and not (ignoring is not None and _ignores(ignoring, sender))
            ):
                found.names[user_id] = displayname
                found.versions[user_id] = int(version or 0)
    return found


def _ignores(content: Any, sender: Any) -> bool:
    """Whether an m.ignored_user_list content (JSON text, or decoded by the driver) names
    ``sender``; a cheap substring test first, as most lists do not (an ASCII ID without
    quotes or backslashes is written as it is in the JSON text)."""
    if not isinstance(sender, str):
        return False
    if isinstance(content, str):
        literal = sender.isascii() and '"' not in sender and "\\" not in sender
        if literal and sender not in content:
            return False
        content = json.loads(content)
    return sender in ignored_in(content)


def do_evaluate_event(
    room: Room, event: Event, pdu: JsonDict, power_levels: Callable[[], PowerLevels]
) -> int:
    """Evaluate a newly persisted live event for the room's local users and store their
    notifications; returns how many were stored. Runs in the event's transaction;
    ``power_levels`` reads the room's power levels (only when someone is evaluated for)."""
    if not settings.MATRIXHS_PUSH_EVALUATION or event.stream_ordering is None:
        return 0
    if event.rejected_reason is not None or event.soft_failed:
        return 0
    recipients = _recipients(room, pdu)
    if not recipients.names:
        return 0
    power = power_levels()
    facts = EventFacts.of(
        {**pdu, "event_id": event.event_id},
        recipients.joined,
        power.user_level(event.sender),
        {"room": power.notification_level("room") or 50, **power.notifications},
    )
    rulesets = rulesets_of(recipients.versions)
    thread_id, ts = thread_of(event), now_ms()
    rows: list[tuple[Any, ...]] = []
    encoded: dict[int, str] = {}
    for user_id, display_name in recipients.names.items():
        outcome = outcome_of(evaluate(rulesets[user_id], facts, Member(user_id, display_name)))
        if not outcome.notify:
            continue
        actions = encoded.get(id(outcome))
        if actions is None:
            actions = encoded[id(outcome)] = json.dumps(outcome.actions, separators=(",", ":"))
        rows.append(
            (
                user_id,
                room.pk,
                event.event_id,
                event.stream_ordering,
                thread_id,
                outcome.highlight,
                actions,
                ts,
            )
        )
    _insert(rows)
    enqueue_deliveries(room, event, {row[0]: (row[5], row[6]) for row in rows})
    return len(rows)


_COLUMNS = (
    "user_id",
    "room_id",
    "event_id",
    "stream_ordering",
    "thread_id",
    "highlight",
    "actions",
    "ts",
)
_CHUNK = 500


def _insert(rows: list[tuple[Any, ...]]) -> None:
    """Notification rows in bulk (a message in a big room makes a row for nearly every
    member, while the room is locked): COPY on PostgreSQL, multi-row INSERTs on SQLite.
    An event is evaluated once, in the transaction that stores it, so no row exists yet."""
    if not rows:
        return
    table = Notification._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {table} ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    placeholders = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(_COLUMNS)}) VALUES "
                + ", ".join([placeholders] * len(chunk))
                + " ON CONFLICT (user_id, stream_ordering) DO NOTHING",
                [value for row in chunk for value in row],
            )
