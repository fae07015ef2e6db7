"""Reads of push: the user's whole ruleset, one rule, the pushers, unread counts."""

from __future__ import annotations

from django.db import connection

from accounts.models import User
from accounts.queries import ignored_users
from matrixhs.errors import InvalidParam, JsonDict, NotFound
from matrixhs.tokens import parse_position
from push.models import (
    DefaultRuleSetting,
    MembershipSpan,
    Notification,
    NotificationExclusion,
    Pusher,
    PushRule,
    SharedNotification,
)
from push.rules import KINDS, MASTER_RULE_ID, default_rules
from rooms.models import Event, Receipt, RoomMembership


def check_kind(kind: str) -> str:
    """Raises: InvalidParam: not a push rule kind."""
    if kind not in KINDS:
        raise InvalidParam(f"Unknown push rule kind {kind!r}")
    return kind


def format_rule(rule: PushRule) -> JsonDict:
    """A user-defined rule as clients see it: conditions for override/underride rules,
    pattern for content rules, neither for room and sender rules."""
    body: JsonDict = {
        "rule_id": rule.rule_id,
        "default": False,
        "enabled": rule.enabled,
        "actions": rule.actions,
    }
    if rule.conditions is not None:
        body["conditions"] = rule.conditions
    if rule.pattern is not None:
        body["pattern"] = rule.pattern
    return body


def _defaults_with_settings(user: User) -> dict[str, list[JsonDict]]:
    defaults = default_rules(user.user_id)
    settings = {s.rule_id: s for s in DefaultRuleSetting.objects.filter(user=user)}
    for rules in defaults.values():
        for rule in rules:
            setting = settings.get(rule["rule_id"])
            if setting is None:
                continue
            if setting.enabled is not None:
                rule["enabled"] = setting.enabled
            if setting.actions is not None:
                rule["actions"] = setting.actions
    return defaults


def push_rules_content(user: User) -> JsonDict:
    """The user's whole ruleset: ``{"global": {kind: [rule, ...]}}`` (two queries).

    In each kind the user's rules come first, then the server-default ones, except that
    ``.m.rule.master`` leads the override rules.
    """
    defaults = _defaults_with_settings(user)
    own: dict[str, list[JsonDict]] = {kind: [] for kind in KINDS}
    for rule in PushRule.objects.filter(user=user).order_by("kind", "position", "pk"):
        own[rule.kind].append(format_rule(rule))
    ruleset: JsonDict = {kind: own[kind] + defaults[kind] for kind in KINDS}
    master, *other_defaults = defaults["override"]
    assert master["rule_id"] == MASTER_RULE_ID
    ruleset["override"] = [master, *own["override"], *other_defaults]
    return {"global": ruleset}


def get_push_rule(user: User, kind: str, rule_id: str) -> JsonDict:
    """One rule of the user's ruleset, default or not.

    A kind this server does not have (an MSC's, such as MSC4306's ``postcontent``) has
    no rules: clients probe for such rules and take 404 as "not there".

    Raises:
        NotFound: no such rule of that kind.
    """
    if kind not in KINDS:
        raise NotFound(f"No push rule of kind {kind!r} exists on this server.")
    for rule in push_rules_content(user)["global"][kind]:
        if rule["rule_id"] == rule_id:
            return rule  # type: ignore[no-any-return]
    raise NotFound("The push rule was not found.")


def format_pusher(pusher: Pusher) -> JsonDict:
    body: JsonDict = {
        "pushkey": pusher.pushkey,
        "kind": pusher.kind,
        "app_id": pusher.app_id,
        "app_display_name": pusher.app_display_name,
        "device_display_name": pusher.device_display_name,
        "lang": pusher.lang,
        "data": pusher.data,
    }
    if pusher.profile_tag is not None:
        body["profile_tag"] = pusher.profile_tag
    return body


def list_pushers(user: User) -> list[JsonDict]:
    return [format_pusher(p) for p in Pusher.objects.filter(user=user).order_by("created_ts", "pk")]


# --- Unread counts --------------------------------------------------------------------------

#: Receipts that mark notifications read (spec "Receiving notifications").
READ_RECEIPTS = ("m.read", "m.read.private")

#: (notification_count, highlight_count)
Counts = tuple[int, int]

#: A user's notifications in some rooms up to a position: their own rows, and the shared
#: rows their membership spans cover that do not exclude them; both without those from
#: before the current membership or covered by the latest unthreaded read receipt.
_NOTIFICATIONS_SQL = """
SELECT n.room_id, n.thread_id, n.stream_ordering, n.highlight
FROM {notification} n
LEFT JOIN {membership} m ON m.room_id = n.room_id AND m.user_id = n.user_id
LEFT JOIN reads unthreaded ON unthreaded.room_id = n.room_id AND unthreaded.thread_id = ''
WHERE n.user_id = %s AND n.room_id IN ({rooms}) AND n.stream_ordering <= %s
    AND (m.stream_ordering IS NULL OR n.stream_ordering > m.stream_ordering)
    AND (unthreaded.pos IS NULL OR n.stream_ordering > unthreaded.pos)
UNION ALL
SELECT s.room_id, s.thread_id, s.stream_ordering, s.highlight
FROM {span} sp
JOIN {shared} s ON s.room_id = sp.room_id AND s.stream_ordering >= sp.start_ordering
LEFT JOIN {membership} m ON m.room_id = sp.room_id AND m.user_id = sp.user_id
LEFT JOIN reads unthreaded ON unthreaded.room_id = sp.room_id AND unthreaded.thread_id = ''
WHERE sp.user_id = %s AND sp.room_id IN ({rooms}) AND s.stream_ordering <= %s
    AND (sp.end_ordering IS NULL OR s.stream_ordering < sp.end_ordering)
    AND (m.stream_ordering IS NULL OR s.stream_ordering > m.stream_ordering)
    AND (unthreaded.pos IS NULL OR s.stream_ordering > unthreaded.pos)
    AND NOT EXISTS (
        SELECT 1 FROM {exclusion} x
        WHERE x.user_id = sp.user_id AND x.stream_ordering = s.stream_ordering
    )
"""

_UNREAD_SQL = """
WITH reads AS (
    SELECT r.room_id AS room_id, r.thread_id AS thread_id, MAX(e.stream_ordering) AS pos
    FROM {receipt} r JOIN {event} e ON e.event_id = r.event_id
    WHERE r.user_id = %s AND r.receipt_type IN (%s, %s) AND r.room_id IN ({rooms})
    GROUP BY r.room_id, r.thread_id
)
SELECT n.room_id, n.thread_id, COUNT(*), SUM(CASE WHEN n.highlight THEN 1 ELSE 0 END)
FROM ({notifications}) n
LEFT JOIN reads threaded ON threaded.room_id = n.room_id AND threaded.thread_id = n.thread_id
WHERE threaded.pos IS NULL OR n.stream_ordering > threaded.pos
GROUP BY n.room_id, n.thread_id
"""


def unread_counts(user_id: str, room_pks: list[int], until: int) -> dict[int, dict[str, Counts]]:
    """The user's unread notifications per room and thread ("main" or a root's ID), up to
    the events position ``until``, in one query for all the rooms.

    A notification is read once the user's latest ``m.read`` or ``m.read.private``
    receipt, unthreaded or for the notification's thread, is at or after it; those from
    before the user's current membership (the invite that brought them in) are not
    counted. Notifications are the user's own rows and the shared ones that stand for
    them (push.models.SharedNotification).
    """
    if not room_pks:
        return {}
    rooms = ", ".join(["%s"] * len(room_pks))
    tables = {
        "receipt": Receipt._meta.db_table,
        "event": Event._meta.db_table,
        "notification": Notification._meta.db_table,
        "membership": RoomMembership._meta.db_table,
        "shared": SharedNotification._meta.db_table,
        "span": MembershipSpan._meta.db_table,
        "exclusion": NotificationExclusion._meta.db_table,
        "rooms": rooms,
    }
    sql = _UNREAD_SQL.format(notifications=_NOTIFICATIONS_SQL.format(**tables), **tables)
    params = [user_id, *READ_RECEIPTS, *room_pks]
    params += [user_id, *room_pks, until, user_id, *room_pks, until]
    counts: dict[int, dict[str, Counts]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for room_pk, thread_id, total, highlights in cursor.fetchall():
            counts.setdefault(room_pk, {})[thread_id] = (int(total), int(highlights or 0))
    return counts


def _count_body(counts: Counts) -> JsonDict:
    return {"notification_count": counts[0], "highlight_count": counts[1]}


def format_unread(threads: dict[str, Counts], by_thread: bool) -> JsonDict:
    """A joined room's ``unread_notifications`` and, when the client asked for counts by
    thread, ``unread_thread_notifications`` (threads with unread notifications only;
    ``unread_notifications`` then counts the main timeline alone)."""
    if not by_thread:
        total = (sum(c[0] for c in threads.values()), sum(c[1] for c in threads.values()))
        return {"unread_notifications": _count_body(total)}
    body: JsonDict = {"unread_notifications": _count_body(threads.get("main", (0, 0)))}
    per_thread = {t: _count_body(c) for t, c in threads.items() if t != "main" and c[0]}
    if per_thread:
        body["unread_thread_notifications"] = per_thread
    return body


# --- GET /notifications ---------------------------------------------------------------------

DEFAULT_NOTIFICATIONS_LIMIT = 20
MAX_NOTIFICATIONS_LIMIT = 100


def parse_notifications_token(value: str | None) -> int | None:
    """``from``: the stream position the previous page stopped before.

    Raises:
        InvalidParam: not a token this endpoint gave.
    """
    if value is None:
        return None
    position = parse_position(value)
    if position is None:
        raise InvalidParam("Unknown pagination token")
    return position


def _read_positions(user_id: str, room_pks: set[int]) -> dict[tuple[int, str], int]:
    """(room, thread) -> the position the user's latest read receipt covers ("" is the
    unthreaded receipt)."""
    rows = Receipt.objects.filter(
        user_id=user_id, receipt_type__in=READ_RECEIPTS, room_id__in=room_pks
    ).values_list("room_id", "thread_id", "event_id")
    rows = list(rows)
    positions = dict(
        Event.objects.filter(event_id__in={r[2] for r in rows}).values_list(
            "event_id", "stream_ordering"
        )
    )
    reads: dict[tuple[int, str], int] = {}
    for room_pk, thread_id, event_id in rows:
        position = positions.get(event_id)
        if position is not None:
            reads[(room_pk, thread_id)] = max(position, reads.get((room_pk, thread_id), position))
    return reads


_SHARED_PAGE_SQL = """
SELECT s.* FROM {span} sp
JOIN {shared} s ON s.room_id = sp.room_id AND s.stream_ordering >= sp.start_ordering
WHERE sp.user_id = %s AND (sp.end_ordering IS NULL OR s.stream_ordering < sp.end_ordering)
    AND s.stream_ordering < %s {highlight}
    AND NOT EXISTS (
        SELECT 1 FROM {exclusion} x
        WHERE x.user_id = sp.user_id AND x.stream_ordering = s.stream_ordering
    )
ORDER BY s.stream_ordering DESC
LIMIT %s
"""


def _shared_page(
    user_id: str, start: int | None, limit: int, only_highlight: bool
) -> list[SharedNotification]:
    """The newest shared notifications that stand for the user, before ``start``."""
    sql = _SHARED_PAGE_SQL.format(
        span=MembershipSpan._meta.db_table,
        shared=SharedNotification._meta.db_table,
        exclusion=NotificationExclusion._meta.db_table,
        highlight="AND s.highlight" if only_highlight else "",
    )
    before = start if start is not None else 2**63 - 1
    return list(SharedNotification.objects.raw(sql, [user_id, before, limit]))


def notifications_page(
    user_id: str, device_id: str | None, start: int | None, limit: int, only_highlight: bool
) -> JsonDict:
    """The user's notifications, newest first, before position ``start`` (spec
    GET /notifications): each with its event, actions, and whether a read receipt
    covers it. Events from users the user ignores are left out."""
    # rooms.events (which evaluates push rules) is below the event formatter.
    from rooms.queries.format import Viewer, format_events

    rows = Notification.objects.filter(user_id=user_id)
    if start is not None:
        rows = rows.filter(stream_ordering__lt=start)
    if only_highlight:
        rows = rows.filter(highlight=True)
    own = list(rows.order_by("-stream_ordering")[:limit])
    shared = _shared_page(user_id, start, limit, only_highlight)
    page: list[Notification | SharedNotification] = sorted(
        [*own, *shared], key=lambda n: n.stream_ordering, reverse=True
    )[:limit]
    ignored = ignored_users(user_id)
    events = {
        e.event_id: e
        for e in Event.objects.filter(event_id__in=[n.event_id for n in page]).select_related(
            "room"
        )
        if e.sender not in ignored
    }
    formatted = {
        e["event_id"]: e
        for e in format_events(
            list(events.values()), Viewer(user_id, device_id, ignored=ignored), bundle=False
        )
    }
    reads = _read_positions(user_id, {n.room_id for n in page})
    out = []
    for note in page:
        event = formatted.get(note.event_id)
        if event is None:
            continue
        covered = max(
            reads.get((note.room_id, ""), -(2**63)),
            reads.get((note.room_id, note.thread_id), -(2**63)),
        )
        out.append(
            {
                "actions": note.actions,
                "event": event,
                "read": note.stream_ordering <= covered,
                "room_id": event["room_id"],
                "ts": note.ts,
            }
        )
    body: JsonDict = {"notifications": out}
    if len(page) == limit:
        body["next_token"] = str(page[-1].stream_ordering)
    return body
