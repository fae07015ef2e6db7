"""What /sync (both kinds) needs to know about a user's rooms, read in batches.

Every function takes all the rooms of one sync at once and costs a fixed number of
queries, whatever the number of rooms (a user in 200 rooms must not mean 200 queries).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from accounts.models import AccountData, User
from matrixhs import sql
from matrixhs.errors import JsonDict
from matrixhs.filters import RoomEventFilter
from matrixhs.protocol.events import EventTypes, StateKey
from rooms.events import STRIPPED_STATE_TYPES, load_pdus
from rooms.models import CurrentStateEvent, Event, Receipt, Room, RoomMembership, TimelineGap
from rooms.queries.format import Viewer, format_events, stripped_state_events
from rooms.queries.visibility import filter_visible, from_ignored, without_ignored
from rooms.state import StateMap, states_of_groups


@dataclass(frozen=True)
class MembershipChange:
    room: Room
    membership: str
    event: Event


_MEMBER_MOVED_SQL = (
    f"SELECT 1 FROM {Event._meta.db_table} WHERE type = %s AND state_key = %s "
    "AND stream_ordering > %s AND stream_ordering <= %s LIMIT 1"
)


def membership_changes(user_id: str, since: int, until: int) -> dict[int, MembershipChange]:
    """The user's latest membership event per room in (since, until], by room pk."""
    if not sql.rows(_MEMBER_MOVED_SQL, [EventTypes.MEMBER, user_id, since, until]):
        return {}  # the usual case, asked cheaply
    rows = (
        Event.objects.filter(
            type=EventTypes.MEMBER,
            state_key=user_id,
            stream_ordering__gt=since,
            stream_ordering__lte=until,
            rejected_reason__isnull=True,
        )
        .select_related("room")
        .order_by("stream_ordering")
    )
    latest: dict[int, MembershipChange] = {}
    for event in rows:
        latest[event.room_id] = MembershipChange(event.room, event.membership or "", event)
    return latest


_MEMBERSHIPS_SQL = (
    f"SELECT {', '.join(sql.columns(RoomMembership, 'm') + sql.columns(Room, 'r'))} "
    f"FROM {RoomMembership._meta.db_table} m JOIN {Room._meta.db_table} r ON m.room_id = r.id "
    "WHERE m.user_id = %s AND (NOT m.forgotten OR m.stream_ordering > %s) "
    "AND (m.stream_ordering <= %s OR m.stream_ordering IS NULL)"
)


def current_memberships(user_id: str, until: int, since: int | None = None) -> list[RoomMembership]:
    """The user's rooms with their current membership. Forgotten rooms are left out, but
    for a leave after ``since``: an incremental sync still tells of the leave."""
    split = sql.width(RoomMembership)
    found = []
    after = since if since is not None else until
    for row in sql.rows(_MEMBERSHIPS_SQL, [user_id, after, until]):
        membership = sql.instance(RoomMembership, row[:split])
        membership.room = sql.instance(Room, row[split:])
        found.append(membership)
    return found


def timelines(
    rooms: Sequence[Room],
    since: int | None,
    until: int | Mapping[int, int],
    limit: int,
    event_filter: RoomEventFilter,
    ignored: AbstractSet[str] = frozenset(),
) -> dict[int, tuple[list[Event], bool]]:
    """The newest ``limit`` events of each room in (since, until]: ``(events oldest first,
    limited)``, in one query. ``until``: one position for every room, or each room's own
    by room pk (a room the user left ends at the leave). The non-state events of
    ``ignored`` senders are left out (the reader ignores them)."""
    if not rooms or limit <= 0:
        return {room.pk: ([], False) for room in rooms}
    bounds = until if isinstance(until, Mapping) else {room.pk: until for room in rooms}
    by_bound: dict[int, list[int]] = defaultdict(list)
    for room in rooms:
        by_bound[bounds[room.pk]].append(room.pk)

    def query() -> QuerySet[Event]:
        # Built only when used: building it costs more than the plain query below.
        within = Q(pk__in=[])
        for bound, pks in by_bound.items():
            within |= Q(room_id__in=pks, stream_ordering__lte=bound)
        events = Event.objects.filter(within, outlier=False).filter(event_filter.as_q())
        if ignored:
            events = events.exclude(from_ignored(ignored))
        return events if since is None else events.filter(stream_ordering__gt=since)

    by_pk = {room.pk: room for room in rooms}
    if since is not None:
        # Incremental syncs usually span a few events: take them all in one plain query,
        # and rank per room only when there are too many.
        recent = (
            _recent_events(list(by_pk), since, max(by_bound))
            if event_filter.is_trivial()
            else list(query().order_by("-stream_ordering")[:RECENT_CAP])
        )
        if len(recent) < RECENT_CAP:
            recent = [
                e
                for e in without_ignored(recent, ignored)
                if (e.stream_ordering or 0) <= bounds[e.room_id]
            ]
            for event in recent:
                event.room = by_pk[event.room_id]
            return _cut_at_gaps(_per_room(rooms, recent, limit), since, bounds)
    ranked = (
        query()
        .annotate(
            rank=Window(
                RowNumber(), partition_by=[F("room_id")], order_by=F("stream_ordering").desc()
            )
        )
        .filter(rank__lte=limit + 1)
        .select_related("room")
    )
    return _cut_at_gaps(_per_room(rooms, list(ranked), limit), since, bounds)


#: Events read in one go for an incremental timeline before ranking per room instead.
RECENT_CAP = 500


def _recent_events(room_pks: list[int], since: int, until: int) -> list[Event]:
    placeholders = ", ".join(["%s"] * len(room_pks))
    query = (
        f"SELECT {', '.join(sql.columns(Event, 'e'))} FROM {Event._meta.db_table} e "
        f"WHERE e.room_id IN ({placeholders}) AND e.stream_ordering > %s "
        f"AND e.stream_ordering <= %s AND NOT e.outlier "
        f"ORDER BY e.stream_ordering DESC LIMIT {RECENT_CAP}"
    )
    return [sql.instance(Event, row) for row in sql.rows(query, [*room_pks, since, until])]


def _per_room(
    rooms: Sequence[Room], events: list[Event], limit: int
) -> dict[int, tuple[list[Event], bool]]:
    found: dict[int, list[Event]] = defaultdict(list)
    for event in events:
        found[event.room_id].append(event)
    result = {}
    for room in rooms:
        events = sorted(found.get(room.pk, []), key=lambda e: e.stream_ordering or 0)
        limited = len(events) > limit
        result[room.pk] = (events[-limit:] if limited else events, limited)
    return result


def _cut_at_gaps(
    result: dict[int, tuple[list[Event], bool]], since: int | None, bounds: Mapping[int, int]
) -> dict[int, tuple[list[Event], bool]]:
    """No timeline spans a :class:`TimelineGap`: one with a gap after ``since`` (or after
    its first event, for an initial sync) keeps only what follows the latest gap and is
    ``limited``, so that the client paginates back across it instead of showing the
    events on both sides as adjacent."""
    lows = {
        pk: since if since is not None else (events[0].stream_ordering or 0) - 1
        for pk, (events, _) in result.items()
        if events
    }
    if not lows:
        return result
    room_pks = sorted(lows)
    gaps = sql.rows(
        f"SELECT room_id, stream_ordering FROM {TimelineGap._meta.db_table} "
        f"WHERE room_id IN ({', '.join(['%s'] * len(room_pks))}) "
        "AND stream_ordering > %s AND stream_ordering <= %s",
        [*room_pks, min(lows.values()), max(bounds[pk] for pk in lows)],
    )
    latest: dict[int, int] = {}
    for room_pk, position in gaps:
        if lows[room_pk] < position <= bounds[room_pk]:
            latest[room_pk] = max(latest.get(room_pk, position), position)
    for room_pk, position in latest.items():
        events, _ = result[room_pk]
        result[room_pk] = ([e for e in events if (e.stream_ordering or 0) >= position], True)
    return result


def visible(user_id: str, events: list[Event]) -> list[Event]:
    return filter_visible(user_id, events, joined_now=True)


def last_events_at(rooms: Sequence[Room], position: int) -> dict[int, Event]:
    """Each room's last event at or before ``position`` (its state group is the state then)."""
    ranked = (
        Event.objects.filter(room__in=rooms, stream_ordering__lte=position, outlier=False)
        .annotate(
            rank=Window(
                RowNumber(), partition_by=[F("room_id")], order_by=F("stream_ordering").desc()
            )
        )
        .filter(rank=1)
    )
    return {event.room_id: event for event in ranked}


def state_maps(groups: Iterable[int | None]) -> dict[int, dict[StateKey, str]]:
    return states_of_groups([g for g in groups if g is not None])


def state_events(
    event_ids: Iterable[str], viewer: Viewer, event_filter: RoomEventFilter | None = None
) -> dict[str, JsonDict]:
    """Client-format state events by event ID (one batch), through ``event_filter``."""
    rows = list(Event.objects.filter(event_id__in=set(event_ids)).select_related("room"))
    formatted = format_events(rows, viewer, bundle=False)
    if event_filter is not None:
        formatted = [e for e in formatted if event_filter.matches(e)]
    return {e["event_id"]: e for e in formatted}


def lazy_member_keys(events: list[Event], user_id: str) -> set[StateKey]:
    """Member state keys a lazy-loading client needs for ``events``: their senders and
    the targets of membership events, plus the user."""
    keys = {(EventTypes.MEMBER, e.sender) for e in events}
    keys |= {
        (EventTypes.MEMBER, e.state_key)
        for e in events
        if e.type == EventTypes.MEMBER and e.state_key
    }
    keys.add((EventTypes.MEMBER, user_id))
    return keys


def summaries(rooms: Sequence[Room], user_id: str) -> dict[int, JsonDict]:
    """m.heroes (up to 5 other members) and joined/invited counts, per room, now."""
    if not rooms:
        return {}
    rows = (
        RoomMembership.objects.filter(
            room__in=rooms, membership__in=("join", "invite", "leave", "ban")
        )
        .order_by("room_id", "user_id")
        .values_list("room_id", "user_id", "membership")
    )
    members: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for room_pk, member, membership in rows:
        members[room_pk].append((member, membership))
    return summarise(rooms, members, user_id)


def summarise(
    rooms: Sequence[Room], members: Mapping[int, Sequence[tuple[str, str]]], user_id: str
) -> dict[int, JsonDict]:
    """Room summaries from each room's ``(user_id, membership)`` pairs, by user ID."""
    result = {}
    for room in rooms:
        counts = {"join": 0, "invite": 0}
        heroes: list[str] = []
        fallback: list[str] = []
        for member, membership in members.get(room.pk, []):
            if membership in ("join", "invite"):
                counts[membership] += 1
                if member != user_id and len(heroes) < 5:
                    heroes.append(member)
            elif membership in ("leave", "ban") and member != user_id and len(fallback) < 5:
                fallback.append(member)
        result[room.pk] = {
            "m.heroes": heroes or fallback,
            "m.joined_member_count": counts["join"],
            "m.invited_member_count": counts["invite"],
        }
    return result


def members_in_states(states: Mapping[int, StateMap]) -> dict[int, list[RoomMembership]]:
    """The members of each room in a given state (room pk -> state, e.g. at the user's
    leave), as unsaved RoomMembership rows by user ID: membership and profile from each
    member event (redacted ones pruned), in one batch."""
    pdus = load_pdus(
        event_id
        for state in states.values()
        for (event_type, _), event_id in state.items()
        if event_type == EventTypes.MEMBER
    )
    result: dict[int, list[RoomMembership]] = {}
    for room_pk, state in states.items():
        rows = []
        for (event_type, member), event_id in sorted(state.items()):
            content = pdus.get(event_id, {}).get("content", {})
            if event_type != EventTypes.MEMBER or not isinstance(content.get("membership"), str):
                continue
            displayname, avatar = content.get("displayname"), content.get("avatar_url")
            rows.append(
                RoomMembership(
                    room_id=room_pk,
                    user_id=member,
                    membership=content["membership"],
                    event_id=event_id,
                    displayname=displayname if isinstance(displayname, str) else None,
                    avatar_url=avatar if isinstance(avatar, str) else None,
                )
            )
        result[room_pk] = rows
    return result


def receipts(
    rooms: Sequence[Room], user_id: str, since: int | None, until: int
) -> dict[int, JsonDict]:
    """m.receipt content per room: receipts changed in (since, until] (all when initial);
    private receipts only the reader's own.

    A user's unthreaded and threaded receipts of one type on the same event cannot both
    be written in the content (it has one entry per user): the unthreaded one is, even
    when only the threaded one changed (MSC4102, spec issue 1727), so a client never
    takes a thread receipt for the user's whole-room read position."""
    readable = ~Q(receipt_type="m.read.private") | Q(user_id=user_id)
    query = Receipt.objects.filter(readable, room__in=rooms, stream_id__lte=until)
    if since is not None:
        query = query.filter(stream_id__gt=since)
    columns = ("room_id", "event_id", "receipt_type", "user_id", "ts", "thread_id")
    rows = list(query.values_list(*columns))
    threaded = [row for row in rows if row[5]]
    if threaded:
        # The unthreaded receipts such a threaded one clashes with, wherever they fall.
        rows += Receipt.objects.filter(
            readable,
            room__in={row[0] for row in threaded},
            user_id__in={row[3] for row in threaded},
            event_id__in={row[1] for row in threaded},
            thread_id="",
            stream_id__lte=until,
        ).values_list(*columns)
    content: dict[int, JsonDict] = defaultdict(dict)
    for room_pk, event_id, kind, member, ts, thread in rows:
        readers = content[room_pk].setdefault(event_id, {}).setdefault(kind, {})
        if thread and member in readers and "thread_id" not in readers[member]:
            continue  # the unthreaded receipt on this event wins
        readers[member] = {"ts": ts, "thread_id": thread} if thread else {"ts": ts}
    return dict(content)


def room_account_data(
    user: User, rooms: Sequence[Room], since: int | None, until: int
) -> dict[str, list[JsonDict]]:
    """Per-room account data changed in (since, until], by room ID."""
    query = AccountData.objects.filter(
        user=user, room_id__in=[r.room_id for r in rooms], stream_id__lte=until
    )
    if since is not None:
        query = query.filter(stream_id__gt=since)
    result: dict[str, list[JsonDict]] = defaultdict(list)
    for room_id, data_type, content in query.values_list("room_id", "type", "content"):
        result[room_id].append({"type": data_type, "content": content})
    return dict(result)


def stripped_state(rooms: Sequence[Room], own: dict[int, str]) -> dict[int, list[JsonDict]]:
    """invite_state / knock_state: the room's stripped state plus the user's own membership
    event (``own``: its event ID by room pk), redacted content where redacted. For a room
    on another server it is the stripped state that came with the invite."""
    remote = dict(
        RoomMembership.objects.filter(
            room__in=rooms, event_id__in=own.values(), stripped_state__isnull=False
        ).values_list("room_id", "stripped_state")
    )
    rows = list(
        CurrentStateEvent.objects.filter(
            room__in=[r for r in rooms if r.pk not in remote],
            type__in=STRIPPED_STATE_TYPES,
            state_key="",
        ).values_list("room_id", "event_id")
    )
    rows += [(room_pk, event_id) for room_pk, event_id in own.items()]
    stripped = stripped_state_events(event_id for _, event_id in rows)
    result: dict[int, list[JsonDict]] = defaultdict(list)
    for room_pk, entries in remote.items():
        result[room_pk].extend(e for e in entries if isinstance(e, dict))
    for room_pk, event_id in rows:
        if event_id in stripped:
            result[room_pk].append(stripped[event_id])
    return dict(result)


def is_local(user_id: str) -> bool:
    return user_id.endswith(f":{settings.MATRIXHS_SERVER_NAME}")


def users_sharing_rooms(user_id: str) -> set[str]:
    """Everyone in a room the user is joined to (the user included)."""
    rooms = RoomMembership.objects.filter(user_id=user_id, membership="join").values("room_id")
    return set(
        RoomMembership.objects.filter(room_id__in=rooms, membership="join").values_list(
            "user_id", flat=True
        )
    ) | {user_id}


def membership_movements(user_id: str, since: int, until: int) -> tuple[set[str], set[str]]:
    """Who came into, and who went out of, the user's rooms in (since, until]: joins in
    rooms the user is in (all members of rooms the user just joined), and leaves."""
    my_rooms = RoomMembership.objects.filter(user_id=user_id, membership="join").values("room_id")
    moves = Event.objects.filter(
        room_id__in=my_rooms,
        type=EventTypes.MEMBER,
        stream_ordering__gt=since,
        stream_ordering__lte=until,
    ).values_list("room_id", "state_key", "membership")
    joined: set[str] = set()
    departed: set[str] = set()
    rooms_i_joined = []
    for room_pk, member, membership in moves:
        if membership == "join":
            joined.add(member)
            if member == user_id:
                rooms_i_joined.append(room_pk)
        elif membership in ("leave", "ban"):
            departed.add(member)
    if rooms_i_joined:
        joined |= set(
            RoomMembership.objects.filter(
                room_id__in=rooms_i_joined, membership="join"
            ).values_list("user_id", flat=True)
        )
    # Rooms the user left in the window: their members may no longer share a room.
    left_rooms = Event.objects.filter(
        type=EventTypes.MEMBER,
        state_key=user_id,
        membership__in=("leave", "ban"),
        stream_ordering__gt=since,
        stream_ordering__lte=until,
    ).values("room_id")
    departed |= set(
        RoomMembership.objects.filter(room_id__in=left_rooms, membership="join").values_list(
            "user_id", flat=True
        )
    )
    joined.discard(user_id)
    departed.discard(user_id)
    return joined, departed


def names_and_avatars(rooms: Sequence[Room]) -> dict[int, dict[str, str]]:
    """Each room's m.room.name ``name`` and m.room.avatar ``url`` now, where set (one batch)."""
    rows = CurrentStateEvent.objects.filter(
        room__in=rooms, type__in=(EventTypes.NAME, EventTypes.AVATAR), state_key=""
    ).values_list("room_id", "type", "event_id")
    return _names(list(rows))


def names_in_states(states: Mapping[int, StateMap]) -> dict[int, dict[str, str]]:
    """:func:`names_and_avatars` in a given state of each room (room pk -> state)."""
    return _names(
        [
            (room_pk, event_type, state[(event_type, "")])
            for room_pk, state in states.items()
            for event_type in (EventTypes.NAME, EventTypes.AVATAR)
            if (event_type, "") in state
        ]
    )


def _names(rows: list[tuple[int, str, str]]) -> dict[int, dict[str, str]]:
    pdus = load_pdus(event_id for _, _, event_id in rows)
    result: dict[int, dict[str, str]] = defaultdict(dict)
    for room_pk, event_type, event_id in rows:
        content = pdus.get(event_id, {}).get("content", {})
        field_name, value = (
            ("name", content.get("name"))
            if event_type == EventTypes.NAME
            else ("avatar", content.get("url"))
        )
        if isinstance(value, str) and value:
            result[room_pk][field_name] = value
    return dict(result)
