"""POST /search, the ``room_events`` category (spec "Server Side Search").

Matches come from the full-text index (rooms/search_index.py), narrowed in SQL to the
rooms the searcher is joined to or left (up to their leave; never a room they were only
invited to or never in), to the filter's rooms, senders and types and to the searched
keys. What SQL cannot decide is checked on each candidate, batched: history visibility
at the event (rooms/queries/visibility.py, as for /messages) and ``contains_url``. A page
reads candidates in batches until it has ``limit`` results, for at most
``SCAN_ROUNDS`` batches; ``next_batch`` is the position of the last candidate looked at,
so pages neither repeat nor skip an event. ``count`` is that of the matches in those
rooms before the visibility checks (the spec's "approximate" count).

``next_batch`` is opaque to clients: base64 of a small JSON object with the keyset
position (rank and stream position), the stream position the first page was taken at
(later events stay out of later pages, and ``count`` stays the same), and, for a
group's token, the room or sender it is restricted to.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connection

from matrixhs.errors import InvalidParam, JsonDict
from matrixhs.filters import RoomEventFilter
from matrixhs.protocol.events import EventTypes, Membership
from matrixhs.protocol.ids import InvalidIdentifier, parse_room_id, parse_user_id
from matrixhs.streams import Stream, current_position
from rooms.events import load_pdus, stored_pdu
from rooms.models import Event, RoomMembership
from rooms.queries.access import RoomAccess
from rooms.queries.format import Viewer, format_events
from rooms.queries.state import state_events
from rooms.queries.timeline import position_of
from rooms.queries.visibility import filter_visible
from rooms.search_index import ALL_KEYS, After, Term, Where, parse_term, search_backend
from rooms.state import states_of_groups

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
DEFAULT_CONTEXT = 5
MAX_CONTEXT = 50
#: Candidate batches one page reads at most (events the searcher may not see are skipped).
SCAN_ROUNDS = 5
GROUP_KEYS = ("room_id", "sender")


@dataclass(frozen=True)
class Criteria:
    """The parsed ``room_events`` criteria."""

    term: Term
    keys: tuple[str, ...] = ALL_KEYS
    event_filter: RoomEventFilter = field(default_factory=RoomEventFilter)
    by_rank: bool = True
    context: tuple[int, int, bool] | None = None  # before, after, include_profile
    group_by: tuple[str, ...] = ()
    include_state: bool = False

    @classmethod
    def from_body(cls, body: JsonDict) -> Criteria:
        """``body``: the validated RoomEventsCriteriaBody.

        Raises:
            BadJson: an invalid filter.
        """
        context = body.get("event_context")
        return cls(
            term=parse_term(body["search_term"]),
            keys=tuple(dict.fromkeys(body["keys"])) if body.get("keys") else ALL_KEYS,
            event_filter=RoomEventFilter.parse(body.get("filter")),
            by_rank=body.get("order_by", "rank") == "rank",
            context=None
            if context is None
            else (
                min(context.get("before_limit", DEFAULT_CONTEXT), MAX_CONTEXT),
                min(context.get("after_limit", DEFAULT_CONTEXT), MAX_CONTEXT),
                context.get("include_profile", False),
            ),
            group_by=tuple(
                dict.fromkeys(g["key"] for g in body.get("groupings", {}).get("group_by", []))
            ),
            include_state=body.get("include_state", False),
        )


@dataclass(frozen=True)
class Batch:
    """A ``next_batch`` token: where the next page starts."""

    after: After | None
    upto: int
    group: tuple[str, str] | None = None

    def encode(self) -> str:
        data: JsonDict = {"u": self.upto}
        if self.after is not None:
            data.update(r=self.after.rank, s=self.after.stream)
        if self.group is not None:
            data["g"] = list(self.group)
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Batch:
        """Raises: InvalidParam: not a token this server issued."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
        except (binascii.Error, ValueError) as exc:
            raise InvalidParam("Invalid next_batch") from exc
        if not isinstance(data, dict) or not _is_int(data.get("u")):
            raise InvalidParam("Invalid next_batch")
        after = None
        if "s" in data or "r" in data:
            rank = data.get("r")
            if not _is_int(data.get("s")) or isinstance(rank, bool):
                raise InvalidParam("Invalid next_batch")
            if not isinstance(rank, int | float) or not math.isfinite(rank):
                raise InvalidParam("Invalid next_batch")
            after = After(float(rank), data["s"])
        group = data.get("g")
        if group is not None and not _is_group(group):
            raise InvalidParam("Invalid next_batch")
        return cls(after, data["u"], tuple(group) if group is not None else None)


def _is_group(group: Any) -> bool:
    """A group of a token: ["room_id", <room ID>] or ["sender", <user ID>]."""
    if not (isinstance(group, list) and len(group) == 2 and group[0] in GROUP_KEYS):
        return False
    parse = parse_room_id if group[0] == "room_id" else parse_user_id
    try:
        parse(group[1])
    except (InvalidIdentifier, TypeError):
        return False
    return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63


@dataclass(frozen=True)
class _Rooms:
    """The rooms a search covers: room pk -> room ID, and which of them the searcher is
    joined to now (the others they left, and are read up to their leave)."""

    ids: dict[int, str]
    joined: set[int]


def _searchable_rooms(user_id: str, event_filter: RoomEventFilter, group: Any) -> _Rooms:
    rows = RoomMembership.objects.filter(
        user_id=user_id,
        membership__in=(Membership.JOIN, Membership.LEAVE, Membership.BAN),
        forgotten=False,
    ).values_list("room_id", "room__room_id", "membership")
    ids, joined = {}, set()
    for pk, room_id, membership in rows:
        if event_filter.rooms is not None and room_id not in event_filter.rooms:
            continue
        if room_id in event_filter.not_rooms:
            continue
        if group is not None and group[0] == "room_id" and group[1] != room_id:
            continue
        ids[pk] = room_id
        if membership == Membership.JOIN:
            joined.add(pk)
    return _Rooms(ids, joined)


def _where(user_id: str, criteria: Criteria, rooms: _Rooms, batch: Batch) -> Where:
    """The SQL conditions every candidate meets (see the module docstring)."""
    joined = sorted(rooms.joined)
    left = sorted(rooms.ids.keys() - rooms.joined)
    in_rooms = []
    params: list[Any] = []
    if joined:
        in_rooms.append(f"s.room_id IN ({', '.join(['%s'] * len(joined))})")
        params += joined
    if left:
        in_rooms.append(
            f"(s.room_id IN ({', '.join(['%s'] * len(left))}) AND s.stream_ordering <= "
            f"(SELECT m.stream_ordering FROM {RoomMembership._meta.db_table} m "
            "WHERE m.room_id = s.room_id AND m.user_id = %s))"
        )
        params += [*left, user_id]
    parts = [f"({' OR '.join(in_rooms)})", "s.stream_ordering <= %s"]
    params.append(batch.upto)
    if set(criteria.keys) != set(ALL_KEYS):
        parts.append(f"s.key IN ({', '.join(['%s'] * len(criteria.keys))})")
        params += criteria.keys
    event_filter = replace(criteria.event_filter, rooms=None, not_rooms=[])
    if batch.group is not None and batch.group[0] == "sender":
        sender = batch.group[1]
        allowed = event_filter.senders is None or sender in event_filter.senders
        event_filter = replace(event_filter, senders=[sender] if allowed else [])
    event_sql, event_params = _event_conditions(event_filter)
    if event_sql:
        parts.append(event_sql)
        params += event_params
    return Where(" AND ".join(parts), params, needs_event=bool(event_sql))


def _event_conditions(event_filter: RoomEventFilter) -> tuple[str, list[Any]]:
    """The filter's conditions on the event row (types, senders), as the SQL the ORM
    makes of ``RoomEventFilter.as_q`` (on the ``rooms_event`` table)."""
    if event_filter.is_trivial():
        return "", []
    query = Event.objects.filter(event_filter.as_q()).query
    try:
        sql, params = query.get_compiler(connection=connection).compile(query.where)
    except FullResultSet:  # no condition on the event row (e.g. only contains_url)
        return "", []
    except EmptyResultSet:  # e.g. "types": []
        return "1 = 0", []
    return sql, list(params)


@dataclass
class _Page:
    results: list[tuple[Event, float]]
    next_position: After | None


def _read_page(
    user_id: str, criteria: Criteria, rooms: _Rooms, where: Where, after: After | None, limit: int
) -> _Page:
    backend = search_backend()
    results: list[tuple[Event, float]] = []
    size = max(limit * 2, 20)
    for _ in range(SCAN_ROUNDS):
        rows = backend.candidates(criteria.term, where, criteria.by_rank, after, size)
        loaded = Event.objects.select_related("room").in_bulk([pk for pk, _, _ in rows])
        visible = {
            e.pk
            for e in filter_visible(user_id, list(loaded.values()), rooms.joined)
            if criteria.event_filter.matches_content(stored_pdu(e).get("content", {}))
        }
        for pk, rank, stream in rows:
            after = After(rank, stream)
            if pk in visible:
                results.append((loaded[pk], rank))
                if len(results) == limit:
                    # A full page always carries a next_batch, as Synapse's do (the
                    # page after the last match is empty and has none): clients and
                    # Complement's search tests page on while one is given.
                    return _Page(results, after)
        if len(rows) < size:
            return _Page(results, None)
    return _Page(results, after)


def search_room_events(
    user_id: str, viewer: Viewer, criteria: Criteria, next_batch: str | None
) -> JsonDict:
    """The ``room_events`` part of the /search response.

    Raises:
        InvalidParam: a ``next_batch`` this server did not issue.
    """
    batch = (
        Batch.decode(next_batch)
        if next_batch is not None
        else Batch(None, current_position(Stream.EVENTS))
    )
    limit = min(criteria.event_filter.limit or DEFAULT_LIMIT, MAX_LIMIT)
    rooms = _searchable_rooms(user_id, criteria.event_filter, batch.group)
    body: JsonDict = {"results": [], "highlights": criteria.term.highlights}
    if not rooms.ids or not criteria.term.clauses:
        return {**body, "count": 0}
    where = _where(user_id, criteria, rooms, batch)
    page = _read_page(user_id, criteria, rooms, where, batch.after, limit)
    events = [event for event, _ in page.results]
    formatted = format_events(events, viewer)
    body["results"] = [
        {"rank": rank, "result": event_body}
        for (_, rank), event_body in zip(page.results, formatted, strict=True)
    ]
    # On every page: matrix-js-sdk replaces its count with each page's.
    body["count"] = search_backend().count(criteria.term, where)
    if page.next_position is not None:
        body["next_batch"] = replace(batch, after=page.next_position).encode()
    if criteria.context is not None and events:
        contexts = _contexts(user_id, viewer, events, rooms, criteria.context)
        for result, context in zip(body["results"], contexts, strict=True):
            result["context"] = context
    if criteria.group_by:
        body["groups"] = _groups(events, criteria.group_by, batch, page.next_position)
    if criteria.include_state and events:
        body["state"] = _room_states(user_id, viewer, events)
    return body


def _groups(
    events: Sequence[Event], group_by: Sequence[str], batch: Batch, next_position: After | None
) -> JsonDict:
    """The page's results by room and/or sender, each group in the order of its first
    result; a group's ``next_batch`` pages on within that group alone."""
    groups: JsonDict = {}
    for key in group_by:
        by_value: JsonDict = {}
        for event in events:
            value = event.room.room_id if key == "room_id" else event.sender
            group = by_value.setdefault(value, {"results": [], "order": len(by_value)})
            group["results"].append(event.event_id)
        if next_position is not None:
            for value, group in by_value.items():
                token = Batch(next_position, batch.upto, (key, value))
                group["next_batch"] = token.encode()
        groups[key] = by_value
    return groups


def _contexts(
    user_id: str,
    viewer: Viewer,
    events: Sequence[Event],
    rooms: _Rooms,
    limits: tuple[int, int, bool],
) -> list[JsonDict]:
    """``context`` of each result: the events around it the searcher may see (up to
    their leave in a room they left), with /messages tokens, and, when asked, the profile
    of each sender there as of the result event. Visibility and formatting are
    batched over all results."""
    before_n, after_n, include_profile = limits
    bounds = _leave_positions(user_id, {e.room_id for e in events} - rooms.joined)
    arounds = _surroundings(events, bounds, before_n, after_n)
    near = [e for a in arounds for e in (*a.before, *a.after)]
    visible = {e.pk for e in filter_visible(user_id, near, rooms.joined)}
    shown = [e for e in near if e.pk in visible]
    formatted = dict(zip([e.pk for e in shown], format_events(shown, viewer), strict=True))
    profiles = _profiles(events, arounds, visible) if include_profile else None
    contexts = []
    for index, (event, around) in enumerate(zip(events, arounds, strict=True)):
        context: JsonDict = {
            "start": around.start(event),
            "end": around.end(event),
            "events_before": [formatted[e.pk] for e in around.before if e.pk in visible],
            "events_after": [formatted[e.pk] for e in around.after if e.pk in visible],
        }
        if profiles is not None:
            context["profile_info"] = profiles[index]
        contexts.append(context)
    return contexts


@dataclass
class _Around:
    before: list[Event] = field(default_factory=list)  # newest first
    after: list[Event] = field(default_factory=list)  # oldest first

    def start(self, event: Event) -> str:
        return (
            (position_of(self.before[-1]) if self.before else position_of(event)).before().token()
        )

    def end(self, event: Event) -> str:
        return position_of(self.after[-1] if self.after else event).token()


def _surroundings(
    events: Sequence[Event], bounds: dict[int, int], before_n: int, after_n: int
) -> list[_Around]:
    """The timeline events just before and after each event (as /context orders them:
    by depth, then stream position), up to the searcher's leave in a room they left: one
    query for the IDs of all of them, one for the rows. Not checked for visibility."""
    table = Event._meta.db_table
    parts: list[str] = []
    params: list[Any] = []
    for index, event in enumerate(events):
        bound = event.room_id in bounds
        for side, count, newer, order in (
            ("b", before_n, "<", "DESC"),
            ("a", after_n, ">", "ASC"),
        ):
            if not count:
                continue
            parts.append(
                f"SELECT * FROM (SELECT id, {index} AS n, '{side}' AS side FROM {table} "
                "WHERE room_id = %s AND stream_ordering IS NOT NULL AND outlier = %s"
                + (" AND stream_ordering <= %s" if bound else "")
                + f" AND (depth {newer} %s OR (depth = %s AND stream_ordering {newer} %s)) "
                f"ORDER BY depth {order}, stream_ordering {order} LIMIT %s) AS t{len(parts)}"
            )
            params += [event.room_id, False, *([bounds[event.room_id]] if bound else [])]
            params += [event.depth, event.depth, event.stream_ordering, count]
    arounds = [_Around() for _ in events]
    if not parts:
        return arounds
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        found = cursor.fetchall()
    rows = Event.objects.select_related("room").in_bulk([pk for pk, _, _ in found])
    for pk, index, side in found:
        (arounds[index].before if side == "b" else arounds[index].after).append(rows[pk])
    for around in arounds:
        around.before.sort(key=position_of, reverse=True)
        around.after.sort(key=position_of)
    return arounds


def _leave_positions(user_id: str, room_pks: set[int]) -> dict[int, int]:
    if not room_pks:
        return {}
    return dict(
        RoomMembership.objects.filter(user_id=user_id, room_id__in=room_pks).values_list(
            "room_id", "stream_ordering"
        )
    )


def _profiles(
    events: Sequence[Event], arounds: Sequence[_Around], visible: set[int]
) -> list[JsonDict]:
    """For each result, the display name and avatar of the senders of it and of its
    visible context, from their m.room.member state after the result event."""
    senders = [
        {event.sender} | {e.sender for e in (*around.before, *around.after) if e.pk in visible}
        for event, around in zip(events, arounds, strict=True)
    ]
    keys = {(EventTypes.MEMBER, s) for group in senders for s in group}
    groups = {e.state_group_id for e in events if e.state_group_id is not None}
    states = states_of_groups(groups, keys)
    pdus = load_pdus({eid for state in states.values() for eid in state.values()})
    profiles = []
    for event, users in zip(events, senders, strict=True):
        state = states.get(event.state_group_id or -1, {})
        info: JsonDict = {}
        for user in sorted(users):
            content = pdus.get(state.get((EventTypes.MEMBER, user), ""), {}).get("content", {})
            profile = {
                name: content[name]
                for name in ("displayname", "avatar_url")
                if isinstance(content.get(name), str)
            }
            info[user] = profile
        profiles.append(info)
    return profiles


def _room_states(user_id: str, viewer: Viewer, events: Sequence[Event]) -> JsonDict:
    """``state``: each result room's current state, or for a room the searcher left, its
    state at their leave."""
    rooms = {e.room_id: e.room for e in events}
    memberships = {
        m.room_id: m
        for m in RoomMembership.objects.filter(user_id=user_id, room_id__in=rooms.keys())
    }
    leave_events = Event.objects.in_bulk(
        [m.event_id for m in memberships.values() if m.membership != Membership.JOIN],
        field_name="event_id",
    )
    states: JsonDict = {}
    for pk, room in rooms.items():
        membership = memberships.get(pk)
        if membership is None:
            continue
        access = RoomAccess(
            room, membership.membership, leave_events.get(membership.event_id), peeking=False
        )
        states[room.room_id] = format_events(state_events(access), viewer, bundle=False)
    return states
