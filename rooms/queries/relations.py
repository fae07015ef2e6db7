"""Relations: bundled aggregations (edits, threads, references), /relations and /threads.

A relation only counts between two events of the same room (spec "Forming
relationships between events"): an event of another room naming ours is ignored. An
edit counts only when valid (spec "Validity of replacement events"), a thread only off
an event that is not itself a child of a relation (spec "Threading"). An aggregation
bundles only related events the viewer may see (history visibility, nothing after they
left, nothing from users they ignore), checked in one batch for all the events formatted
together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Max, Q, QuerySet

from matrixhs import sql
from matrixhs.errors import JsonDict
from matrixhs.protocol.events import Membership
from rooms.events import stored_pdu
from rooms.models import Event, RoomMembership
from rooms.queries.access import RoomAccess
from rooms.queries.visibility import filter_visible, from_ignored, ignored_by

if TYPE_CHECKING:
    from rooms.queries.format import Viewer

THREAD = "m.thread"
REPLACE = "m.replace"
REFERENCE = "m.reference"
#: Stored as the rel_type of rich replies (m.in_reply_to has no rel_type of its own).
IN_REPLY_TO = "m.in_reply_to"
ENCRYPTED = "m.room.encrypted"
#: /relations with recurse=true follows relations this many levels deep (spec: at least 3).
MAX_RECURSION_DEPTH = 3


def _children(parent_ids: Sequence[str], rel_types: Sequence[str]) -> QuerySet[Event]:
    """Accepted, unredacted timeline events relating to the parents (in any room: the
    callers keep those in the parent's room)."""
    return Event.objects.filter(
        relates_to__in=parent_ids,
        rel_type__in=rel_types,
        rejected_reason__isnull=True,
        soft_failed=False,
        redacted_by__isnull=True,
        stream_ordering__isnull=False,
    )


_KINDS_SQL = (
    f"SELECT DISTINCT relates_to, rel_type, room_id FROM {Event._meta.db_table} "
    f"WHERE relates_to IN ({{}}) AND rel_type IN ('{THREAD}', '{REPLACE}', '{REFERENCE}') "
    "AND redacted_by IS NULL AND rejected_reason IS NULL AND NOT soft_failed "
    "AND stream_ordering IS NOT NULL"
)


def is_thread_root(event: Event) -> bool:
    """Spec "Threading": a thread cannot start from the child of a relation."""
    return event.rel_type is None or event.rel_type == IN_REPLY_TO


def is_valid_edit(edit: Event, original: Event) -> bool:
    """Spec "Validity of replacement events" (both rows with ``room`` selected)."""
    if (edit.room_id, edit.sender, edit.type) != (original.room_id, original.sender, original.type):
        return False
    if edit.state_key is not None or original.state_key is not None:
        return False
    if original.rel_type == REPLACE:
        return False  # an edit of an edit
    if edit.type == ENCRYPTED:
        return True  # m.new_content is in the encrypted payload
    return isinstance(stored_pdu(edit).get("content", {}).get("m.new_content"), dict)


def bundled_aggregations(events: Sequence[Event], viewer: Viewer) -> dict[str, JsonDict]:
    """``unsigned.m.relations`` for each event that has edits, thread replies or references
    the viewer may see. Unredacted events only (a redacted event bundles nothing)."""
    parents = {e.event_id: e for e in events if e.redacted_by is None}
    if not parents:
        return {}
    ids = list(parents)
    rows = sql.rows(_KINDS_SQL.format(", ".join(["%s"] * len(ids))), ids)
    kinds: dict[str, list[str]] = defaultdict(list)
    for parent_id, kind, room_pk in rows:
        if room_pk == parents[parent_id].room_id:
            kinds[kind].append(parent_id)
    kinds[THREAD] = [p for p in kinds[THREAD] if is_thread_root(parents[p])]
    if not any(kinds.values()):  # the common case, live events: one query and done
        return {}
    aggregator = _Aggregator(parents, viewer)
    aggregator.collect(kinds)
    return aggregator.result()


@dataclass
class _ThreadGroup:
    """Thread replies to one root that share what decides their visibility."""

    root: str
    probe: Event
    count: int
    latest: int
    own: int


class _Aggregator:
    """Reads the candidate children of each kind, checks what the viewer may see of them
    in one batch, and formats the bundles."""

    def __init__(self, parents: dict[str, Event], viewer: Viewer) -> None:
        self.parents = parents
        self.viewer = viewer
        self.ignored = ignored_by(viewer)
        self.threads: list[_ThreadGroup] = []
        self.edits: list[Event] = []
        self.references: list[Event] = []

    def collect(self, kinds: dict[str, list[str]]) -> None:
        if kinds[THREAD]:
            self._collect_threads(kinds[THREAD])
        if kinds[REPLACE]:
            edits = _children(kinds[REPLACE], [REPLACE]).select_related("room")
            self.edits = [
                e
                for e in edits.order_by("origin_server_ts", "event_id")
                if is_valid_edit(e, self.parents[e.relates_to or ""])
            ]
        if kinds[REFERENCE]:
            references = self._not_ignored(_children(kinds[REFERENCE], [REFERENCE]))
            references = references.order_by("stream_ordering")
            self.references = [
                e for e in references if e.room_id == self.parents[e.relates_to or ""].room_id
            ]
        self._keep_visible()

    def _collect_threads(self, roots: list[str]) -> None:
        user_id = self.viewer.user_id
        groups = (
            self._not_ignored(_children(roots, [THREAD]))
            .values("relates_to", "room_id", "state_group_before_id", "type", "state_key")
            .annotate(
                count=Count("id"),
                latest=Max("stream_ordering"),
                own=Count("id", filter=Q(sender=user_id)),
            )
            .order_by()
        )
        for row in groups:
            if row["room_id"] != self.parents[row["relates_to"]].room_id:
                continue
            # Stands for the group's events in the visibility check.
            probe = Event(
                room_id=row["room_id"],
                type=row["type"],
                state_key=row["state_key"],
                state_group_before_id=row["state_group_before_id"],
            )
            self.threads.append(
                _ThreadGroup(row["relates_to"], probe, row["count"], row["latest"], row["own"])
            )

    def _not_ignored(self, children: QuerySet[Event]) -> QuerySet[Event]:
        """Thread replies and references of users the viewer ignores count for nothing
        (edits need not: they share the sender of the event they edit)."""
        return children.exclude(from_ignored(self.ignored)) if self.ignored else children

    def _keep_visible(self) -> None:
        """Drop the children the viewer may not see: one batch for every kind."""
        candidates = [g.probe for g in self.threads] + self.edits + self.references
        if not candidates:
            return
        rooms = {e.room_id for e in candidates}
        joined = set(
            RoomMembership.objects.filter(
                user_id=self.viewer.user_id, room_id__in=rooms, membership=Membership.JOIN
            ).values_list("room_id", flat=True)
        )
        visible = {id(e) for e in filter_visible(self.viewer.user_id, candidates, joined)}
        self.threads = [g for g in self.threads if id(g.probe) in visible]
        self.edits = [e for e in self.edits if id(e) in visible]
        self.references = [e for e in self.references if id(e) in visible]

    def result(self) -> dict[str, JsonDict]:
        from rooms.queries.format import format_events

        latest_edit = {e.relates_to or "": e for e in self.edits}  # ordered: the last wins
        summaries = self._thread_summaries()
        latest_replies = {
            e.relates_to or "": e
            for e in Event.objects.select_related("room").filter(
                stream_ordering__in=[s["latest"] for s in summaries.values()]
            )
        }
        to_format = [*latest_edit.values(), *latest_replies.values()]
        formatted = {e["event_id"]: e for e in format_events(to_format, self.viewer, bundle=False)}
        result: dict[str, JsonDict] = defaultdict(dict)
        for parent_id, edit in latest_edit.items():
            result[parent_id][REPLACE] = formatted[edit.event_id]
        for root, summary in summaries.items():
            latest = latest_replies.get(root)
            if latest is None:
                continue
            result[root][THREAD] = {
                "latest_event": formatted[latest.event_id],
                "count": summary["count"],
                "current_user_participated": summary["participated"],
            }
        for reference in self.references:
            chunk = result[reference.relates_to or ""].setdefault(REFERENCE, {"chunk": []})
            chunk["chunk"].append({"event_id": reference.event_id})
        return dict(result)

    def _thread_summaries(self) -> dict[str, dict[str, Any]]:
        summaries: dict[str, dict[str, Any]] = {}
        for group in self.threads:
            root = self.parents[group.root]
            summary = summaries.setdefault(
                group.root,
                {
                    "count": 0,
                    "latest": 0,
                    "participated": root.sender == self.viewer.user_id,
                },
            )
            summary["count"] += group.count
            summary["latest"] = max(summary["latest"], group.latest)
            summary["participated"] = summary["participated"] or group.own > 0
        return summaries


def related_event_ids(
    parent: Event, rel_type: str | None, event_type: str | None, recurse: bool
) -> list[str]:
    """IDs of the events of the parent's room relating to it (and, with ``recurse``, to
    those)."""
    found: list[str] = []
    frontier = [parent.event_id]
    for _ in range(MAX_RECURSION_DEPTH if recurse else 1):
        children = list(
            Event.objects.filter(
                room_id=parent.room_id, relates_to__in=frontier, stream_ordering__isnull=False
            )
            .exclude(rel_type=IN_REPLY_TO)
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


def thread_roots(
    access: RoomAccess, user_id: str, participated_only: bool, ignored: frozenset[str]
) -> Any:
    """Thread roots of a room with their latest activity, newest first (a queryset of
    dicts): replies and roots of this room only, and for a reader who left, only the
    replies sent before they left. Roots and replies from ``ignored`` users do not count:
    a thread only they answered is no thread to the reader."""
    room = access.room
    roots_here = Event.objects.filter(room=room).filter(
        Q(rel_type__isnull=True) | Q(rel_type=IN_REPLY_TO)
    )
    if ignored:
        roots_here = roots_here.exclude(from_ignored(ignored))
    replies = Event.objects.filter(
        room=room,
        rel_type=THREAD,
        stream_ordering__isnull=False,
        rejected_reason__isnull=True,
        soft_failed=False,
        relates_to__in=roots_here.values("event_id"),
    )
    if ignored:
        replies = replies.exclude(from_ignored(ignored))
    if access.left and access.membership_event is not None:
        replies = replies.filter(stream_ordering__lte=access.membership_event.stream_ordering)
    roots = replies.values("relates_to").annotate(latest=Max("stream_ordering"))
    if participated_only:
        mine = replies.filter(sender=user_id).values("relates_to")
        own = Event.objects.filter(room=room, sender=user_id).values("event_id")
        roots = roots.filter(Q(relates_to__in=mine) | Q(relates_to__in=own))
    return roots.order_by("-latest")
