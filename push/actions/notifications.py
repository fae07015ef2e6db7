"""Push rules evaluated for a new event, in the transaction that stores it.

rooms/events.py calls :func:`do_evaluate_event` for every live event it persists (sent
here or received over federation). Each local member of the room but the sender (and a
local user invited by the event) gets the event through their ruleset; a rule that
notifies stores a :class:`push.models.Notification` at the event's stream position.

In a big room most members get the same outcome (a plain message: ``.m.rule.message``
for everybody on the default rules), worked out once: members with equal rulesets and
equal answers to the conditions that name them (their user ID, display name) share one
walk of the rules (push.evaluator). When that common outcome is most joined members',
it is stored once, as a :class:`push.models.SharedNotification` standing for every local
member joined at the event (their membership spans, push.actions.spans), with a
:class:`push.models.NotificationExclusion` for each joined local member it must not
count for (the sender, those ignoring the sender, those with another outcome); those
of them whom the event notifies another way get their own Notification row. Readers
(push.queries) add the shared rows to the user's own.

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
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import connection

from accounts.models import AccountData, User
from accounts.queries import ignored_in
from matrixhs.protocol.power_levels import PowerLevels
from matrixhs.streams import Stream, current_position
from matrixhs.time import now_ms
from push.actions.delivery import enqueue_deliveries
from push.evaluator import (
    EventFacts,
    Member,
    Outcome,
    Ruleset,
    compile_ruleset,
    evaluate,
    outcome_of,
)
from push.models import Notification, NotificationExclusion, Pusher, SharedNotification
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


_server_default: list[Ruleset] = []


def server_default_ruleset() -> Ruleset:
    """The server-default rules compiled: one ruleset for every user who has none of
    their own, as the conditions that name the user keep no user ID
    (push.evaluator.Condition)."""
    if not _server_default:
        user_id = f"@user:{settings.MATRIXHS_SERVER_NAME}"
        _server_default.append(compile_ruleset({"global": default_rules(user_id)}, user_id))
    return _server_default[0]


def rulesets_of(versions: dict[str, int]) -> dict[str, Ruleset]:
    """The compiled ruleset of each user, given the position of their ``m.push_rules``
    account data (0: none, the server defaults): a query only for the rulesets not
    compiled yet."""
    found: dict[str, Ruleset] = {}
    missing: list[str] = []
    default = server_default_ruleset()
    for user_id, version in versions.items():
        if not version:
            found[user_id] = default
            continue
        key = (user_id, version)
        rules = _compiled.get(key)
        if rules is None:
            missing.append(user_id)
        else:
            _compiled.move_to_end(key)
            found[user_id] = rules
    if not missing:
        return found
    stored = dict(
        AccountData.objects.filter(
            user__user_id__in=missing,
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


_MEMBERS_SQL = """
SELECT m.user_id, m.membership, m.displayname, a.stream_id, i.content
FROM {membership} m
LEFT JOIN {user} u ON u.user_id = m.user_id
LEFT JOIN {account_data} a ON a.user_id = u.id AND a.room_id = '' AND a.type = 'm.push_rules'
LEFT JOIN {account_data} i
    ON i.user_id = u.id AND i.room_id = '' AND i.type = 'm.ignored_user_list'
WHERE m.room_id = %s AND m.membership IN ('join', 'invite', 'knock')
"""

#: Local users of the room with http pushers (drives from the pushers, which are few).
_PUSHED_SQL = """
SELECT DISTINCT u.user_id FROM {pusher} p
JOIN {user} u ON u.id = p.user_id
JOIN {membership} m ON m.user_id = u.user_id AND m.room_id = %s
WHERE p.kind = 'http' AND m.membership IN ('join', 'invite')
"""


@dataclass(frozen=True)
class RoomMembers:
    """What evaluation and wake-ups need of a room's members: the joined count, and each
    local member joined, invited or knocking with their display name, the position of
    their ruleset and their ignore list."""

    joined: int
    #: (user_id, membership, display name, ruleset position or 0, ignore list content)
    local: tuple[tuple[str, str, str | None, int, Any], ...]

    @cached_property
    def local_joined(self) -> list[str]:
        return [row[0] for row in self.local if row[1] == "join"]

    @cached_property
    def joined_names(self) -> dict[str, str | None]:
        return {row[0]: row[2] for row in self.local if row[1] == "join"}

    @cached_property
    def versions(self) -> dict[str, int]:
        return {row[0]: row[3] for row in self.local}

    @cached_property
    def ignoring(self) -> dict[str, Any]:
        """The ignore lists of the local members who have one."""
        return {row[0]: row[4] for row in self.local if row[4] is not None}

    @cached_property
    def by_user(self) -> dict[str, tuple[str, str, str | None, int, Any]]:
        return {row[0]: row for row in self.local}


#: Rooms of at least this many members keep their RoomMembers in this process.
_CACHED_MIN_MEMBERS = 50
_CACHED_ROOMS = 256
_members_cache: OrderedDict[tuple[str, int, int], RoomMembers] = OrderedDict()
#: Rooms seen with at least _CACHED_MIN_MEMBERS members: only theirs are kept, and only
#: for them is the account-data position read (a small room costs no extra query).
_big_rooms: set[str] = set()


def forget_cached() -> None:
    """Drop the compiled rulesets and room members kept in this process."""
    _compiled.clear()
    _members_cache.clear()
    _big_rooms.clear()


def room_members(room: Room) -> RoomMembers:
    """The room's :class:`RoomMembers`, read once per state of the room and of everyone's
    account data. The key says when an entry is stale: the room's current state group
    (every membership or display name change makes a new one) and the account-data
    stream's position (every change of push rules or ignore lists moves it). Only rooms
    of at least _CACHED_MIN_MEMBERS members are kept. Call it in the transaction that
    holds the room's lock, or after it committed."""
    group = room.current_state_group_id
    key: tuple[str, int, int] | None = None
    if group is not None and room.room_id in _big_rooms:
        # Read first: an entry is never keyed by a position whose write it cannot see.
        key = (room.room_id, group, current_position(Stream.ACCOUNT_DATA))
        cached = _members_cache.get(key)
        if cached is not None:
            _members_cache.move_to_end(key)
            return cached
    suffix = f":{settings.MATRIXHS_SERVER_NAME}"
    sql = _MEMBERS_SQL.format(
        membership=RoomMembership._meta.db_table,
        user=User._meta.db_table,
        account_data=AccountData._meta.db_table,
    )
    joined = 0
    local = []
    with connection.cursor() as cursor:
        cursor.execute(sql, [room.pk])
        rows = cursor.fetchall()
    for user_id, membership, displayname, version, ignoring in rows:
        joined += membership == "join"
        if user_id.endswith(suffix):
            local.append((user_id, membership, displayname, int(version or 0), ignoring))
    members = RoomMembers(joined, tuple(local))
    if len(rows) >= _CACHED_MIN_MEMBERS:
        if len(_big_rooms) >= 4 * _CACHED_ROOMS:
            _big_rooms.clear()
        _big_rooms.add(room.room_id)  # kept from the next read on (its key read first)
    if key is not None and len(rows) >= _CACHED_MIN_MEMBERS:
        _members_cache[key] = members
        if len(_members_cache) > _CACHED_ROOMS:
            _members_cache.popitem(last=False)
    return members


@dataclass
class Recipients:
    """The room's joined member count, its joined local users (those a shared
    notification would stand for), and the local users to evaluate for: their display
    names and the positions of their rulesets."""

    joined: int = 0
    local: list[str] = field(default_factory=list)
    names: dict[str, str | None] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    #: The local invitee of an invite, when not joined.
    invitee: str | None = None
    #: Those of the users to evaluate for who have http pushers.
    pushed: set[str] = field(default_factory=set)


def _recipients(room: Room, pdu: JsonDict) -> Recipients:
    """Joined local members and the local invitee of an invite, never the sender nor
    those who ignore the sender (spec "Ignoring Users")."""
    members = room_members(room)
    sender = pdu.get("sender")
    names = dict(members.joined_names)
    found = Recipients(joined=members.joined, local=members.local_joined, names=names)
    invitee = pdu.get("state_key") if pdu.get("type") == "m.room.member" else None
    row = members.by_user.get(invitee) if isinstance(invitee, str) else None
    if row is not None and row[1] == "invite":
        names[row[0]] = row[2]
        found.invitee = row[0]
    names.pop(sender, None)  # type: ignore[arg-type]
    for user_id, ignoring in members.ignoring.items():
        if user_id in names and _ignores(ignoring, sender):
            del names[user_id]
    if found.invitee not in names:
        found.invitee = None
    found.versions = {user_id: members.versions[user_id] for user_id in names}
    if found.names:
        sql = _PUSHED_SQL.format(
            pusher=Pusher._meta.db_table,
            user=User._meta.db_table,
            membership=RoomMembership._meta.db_table,
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [room.pk])
            found.pushed = {row[0] for row in cursor.fetchall()} & found.names.keys()
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


#: A message notifying at least this many joined members alike (and more than it leaves
#: out) is stored as one shared notification rather than a row per member.
SHARED_MIN_MEMBERS = 20


def do_evaluate_event(
    room: Room, event: Event, pdu: JsonDict, power_levels: Callable[[], PowerLevels]
) -> int:
    """Evaluate a newly persisted live event for the room's local users and store their
    notifications; returns how many users it notified. Runs in the event's transaction;
    ``power_levels`` reads the room's power levels (only when a rule needs them)."""
    if not settings.MATRIXHS_PUSH_EVALUATION or event.stream_ordering is None:
        return 0
    if event.rejected_reason is not None or event.soft_failed:
        return 0
    recipients = _recipients(room, pdu)
    if not recipients.names:
        return 0

    def power() -> tuple[float, dict[str, int]]:
        levels = power_levels()
        notifications = {"room": levels.notification_level("room") or 50, **levels.notifications}
        return levels.user_level(event.sender), notifications

    facts = EventFacts.deferred({**pdu, "event_id": event.event_id}, recipients.joined, power)
    notified = _notified(recipients, facts)
    if not notified:
        return 0
    stored = _Stored(room, event, thread_of(event), now_ms())
    shared = _shared_outcome(recipients, notified)
    own = notified
    if shared is not None:
        own = {u: o for u, o in notified.items() if o is not shared or u == recipients.invitee}
        stored.share(shared, [u for u in recipients.local if u not in notified or u in own])
    stored.insert(own)
    enqueue_deliveries(room, event, {u: notified[u] for u in recipients.pushed if u in notified})
    return len(notified)


def _notified(recipients: Recipients, facts: EventFacts) -> dict[str, Outcome]:
    """The outcome of the event for each user it notifies. Members with equal rulesets
    and equal answers to the conditions that name them share one walk of the rules
    (push.evaluator.evaluate); everybody on the server defaults whom the event does not
    name gets the outcome worked out for the first of them."""
    rulesets = rulesets_of(recipients.versions)
    default = server_default_ruleset()
    by_name = default.by_display_name
    outcomes: dict[int, Outcome] = {}
    unnamed: Outcome | None = None
    notified: dict[str, Outcome] = {}
    for user_id, display_name in recipients.names.items():
        ruleset = rulesets[user_id]
        if ruleset is default and unnamed is not None:
            if not facts.may_name(user_id, display_name, by_name):
                if unnamed.notify:
                    notified[user_id] = unnamed
                continue
        actions = evaluate(ruleset, facts, Member(user_id, display_name))
        outcome = outcomes.get(id(actions))
        if outcome is None:
            outcome = outcomes[id(actions)] = outcome_of(actions)
        if ruleset is default and unnamed is None:
            if not facts.may_name(user_id, display_name, by_name):
                unnamed = outcome
        if outcome.notify:
            notified[user_id] = outcome
    return notified


def _shared_outcome(recipients: Recipients, notified: dict[str, Outcome]) -> Outcome | None:
    """The outcome of most joined local members, when one shared notification for them
    and an exclusion for each other joined local member make fewer rows than a
    notification for each of them; None otherwise (a small room, or most members
    muted)."""
    tally = Counter(map(id, notified.values()))
    if recipients.invitee in notified:
        tally[id(notified[recipients.invitee])] -= 1
    key, covered = tally.most_common(1)[0]
    excluded = len(recipients.local) - covered
    if covered < SHARED_MIN_MEMBERS or covered <= excluded + 1:
        return None
    return next(o for o in notified.values() if id(o) == key)


@dataclass
class _Stored:
    """The rows one event's notifications are stored as."""

    room: Room
    event: Event
    thread_id: str
    ts: int

    def share(self, outcome: Outcome, excluded: list[str]) -> None:
        """One shared notification, and the joined local members it does not stand for."""
        SharedNotification.objects.create(
            room=self.room,
            event_id=self.event.event_id,
            stream_ordering=self.event.stream_ordering,
            thread_id=self.thread_id,
            highlight=outcome.highlight,
            actions=outcome.actions,
            ts=self.ts,
        )
        position = self.event.stream_ordering
        rows = [(user_id, self.room.pk, position) for user_id in excluded]
        _insert(NotificationExclusion._meta.db_table, _EXCLUSION_COLUMNS, rows)

    def insert(self, notified: dict[str, Outcome]) -> None:
        """A notification row for each of these members."""
        encoded: dict[int, str] = {}
        for outcome in notified.values():
            if id(outcome) not in encoded:
                encoded[id(outcome)] = json.dumps(outcome.actions, separators=(",", ":"))
        rows = [
            (
                user_id,
                self.room.pk,
                self.event.event_id,
                self.event.stream_ordering,
                self.thread_id,
                outcome.highlight,
                encoded[id(outcome)],
                self.ts,
            )
            for user_id, outcome in notified.items()
        ]
        _insert(Notification._meta.db_table, _COLUMNS, rows)


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
_EXCLUSION_COLUMNS = ("user_id", "room_id", "stream_ordering")
_CHUNK = 500
#: Fewer rows go in one INSERT even on PostgreSQL: COPY costs more round trips.
_COPY_MIN = 20


def _insert(table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Rows in bulk (a message in a big room can make one for nearly every member, while
    the room is locked): COPY on PostgreSQL when there are many, multi-row INSERTs
    otherwise. An event is evaluated once, in the transaction that stores it, so no row
    of it exists yet."""
    if not rows:
        return
    names = ", ".join(columns)
    if connection.vendor == "postgresql" and len(rows) >= _COPY_MIN:
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            cursor.execute(
                f"INSERT INTO {table} ({names}) VALUES "
                + ", ".join([placeholders] * len(chunk))
                + " ON CONFLICT (user_id, stream_ordering) DO NOTHING",
                [value for row in chunk for value in row],
            )
