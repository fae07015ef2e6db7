"""Relations: bundled aggregations (edits, threads, references), /relations and /threads."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.db.models import Count, Max, Q

from matrixhs import sql
from matrixhs.errors import JsonDict
from rooms.models import Event

THREAD = "m.thread"
REPLACE = "m.replace"
REFERENCE = "m.reference"
#: /relations with recurse=true follows relations this many levels deep (spec: at least 3).
MAX_RECURSION_DEPTH = 3


def _visible_children(parent_ids: Sequence[str], rel_types: Sequence[str]) -> Any:
    return Event.objects.filter(
        relates_to__in=parent_ids,
        rel_type__in=rel_types,
        rejected_reason__isnull=True,
        soft_failed=False,
        redacted_by__isnull=True,
        stream_ordering__isnull=False,
    )


_KINDS_SQL = (
    f"SELECT DISTINCT rel_type FROM {Event._meta.db_table} WHERE relates_to IN ({{}}) "
    f"AND rel_type IN ('{THREAD}', '{REPLACE}', '{REFERENCE}') AND redacted_by IS NULL "
    "AND rejected_reason IS NULL AND NOT soft_failed AND stream_ordering IS NOT NULL"
)


def bundled_aggregations(events: Sequence[Event], user_id: str) -> dict[str, JsonDict]:
    """``unsigned.m.relations`` for each event that has edits, thread replies or references."""
    ids = [e.event_id for e in events]
    if not ids:
        return {}
    kinds = {kind for (kind,) in sql.rows(_KINDS_SQL.format(", ".join(["%s"] * len(ids))), ids)}
    if not kinds:  # the common case, live events: one query and done
        return {}
    by_id = {e.event_id: e for e in events}
    result: dict[str, JsonDict] = defaultdict(dict)
    if THREAD in kinds:
        _add_threads(ids, user_id, result)
    if REPLACE in kinds:
        _add_edits(ids, by_id, user_id, result)
    references = defaultdict(list)
    if REFERENCE in kinds:
        for parent, child in _visible_children(ids, [REFERENCE]).values_list(
            "relates_to", "event_id"
        ):
            references[parent].append({"event_id": child})
    for parent, chunk in references.items():
        result[parent][REFERENCE] = {"chunk": chunk}
    return dict(result)


def _add_threads(ids: Sequence[str], user_id: str, result: dict[str, JsonDict]) -> None:
    from rooms.queries.format import Viewer, format_events

    summaries = (
        _visible_children(ids, [THREAD])
        .values("relates_to")
        .annotate(count=Count("id"), latest=Max("stream_ordering"))
    )
    summaries = list(summaries)
    if not summaries:
        return
    latest_rows = {
        e.relates_to: e
        for e in Event.objects.select_related("room").filter(
            stream_ordering__in=[s["latest"] for s in summaries]
        )
    }
    participated = set(
        _visible_children(ids, [THREAD]).filter(sender=user_id).values_list("relates_to", flat=True)
    )
    own_roots = set(
        Event.objects.filter(event_id__in=ids, sender=user_id).values_list("event_id", flat=True)
    )
    viewer = Viewer(user_id)
    for summary in summaries:
        root = summary["relates_to"]
        latest = latest_rows.get(root)
        if latest is None:
            continue
        result[root][THREAD] = {
            "latest_event": format_events([latest], viewer, bundle=False)[0],
            "count": summary["count"],
            "current_user_participated": root in participated or root in own_roots,
        }


def _add_edits(
    ids: Sequence[str], by_id: dict[str, Event], user_id: str, result: dict[str, JsonDict]
) -> None:
    from rooms.queries.format import Viewer, format_events

    latest: dict[str, Event] = {}
    edits = (
        _visible_children(ids, [REPLACE])
        .select_related("room")
        .order_by("origin_server_ts", "event_id")
    )
    for edit in edits:
        original = by_id.get(edit.relates_to or "")
        # Only the original sender's edits of the same event type count (spec "Event replacements").
        if original is not None and edit.sender == original.sender and edit.type == original.type:
            latest[original.event_id] = edit
    for original_id, edit in latest.items():
        result[original_id][REPLACE] = format_events([edit], Viewer(user_id), bundle=False)[0]


def related_event_ids(
    parent_id: str, rel_type: str | None, event_type: str | None, recurse: bool
) -> list[str]:
    """IDs of the events relating to ``parent_id`` (and, with ``recurse``, to those)."""
    found: list[str] = []
    frontier = [parent_id]
    for _ in range(MAX_RECURSION_DEPTH if recurse else 1):
        children = list(
            Event.objects.filter(relates_to__in=frontier, stream_ordering__isnull=False)
            .exclude(rel_type="m.in_reply_to")
            .values_list("event_id", "rel_type", "type")
        )
        if not children:
            break
        for event_id, child_rel, child_type in children:
            if (rel_type is None or child_rel == rel_type) and (
                event_type is None or child_type == event_type
            ):
                found.append(event_id)
        frontier = [event_id for event_id, _, _ in children]
    return found


def thread_roots(room_id: str, user_id: str, participated_only: bool) -> Any:
    """Thread roots of a room with their latest activity, newest first (a queryset of dicts)."""
    replies = Event.objects.filter(
        room__room_id=room_id,
        rel_type=THREAD,
        stream_ordering__isnull=False,
        rejected_reason__isnull=True,
    )
    roots = replies.values("relates_to").annotate(latest=Max("stream_ordering"))
    if participated_only:
        mine = replies.filter(sender=user_id).values("relates_to")
        own = Event.objects.filter(room__room_id=room_id, sender=user_id).values("event_id")
        roots = roots.filter(Q(relates_to__in=mine) | Q(relates_to__in=own))
    return roots.order_by("-latest")
