"""Room timelines: /messages pagination tokens, /messages and /context.

Events are ordered topologically: by ``(depth, stream_ordering)``, which follows the
graph across forks and equals the stream order in a room without forks. A token
``t<depth>_<stream>`` is the position just after that event; a sync token
``s<stream>[_...]`` is accepted too and means "after every event up to that stream
position".
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from matrixhs.errors import InvalidParam, JsonDict, NotFound
from matrixhs.filters import RoomEventFilter
from matrixhs.protocol.events import EventTypes
from matrixhs.tokens import parse_position
from rooms.events import stored_pdu
from rooms.models import Event
from rooms.queries.access import RoomAccess
from rooms.queries.format import Viewer, format_events
from rooms.queries.visibility import filter_visible, from_ignored, with_ignored
from rooms.state import states_of_groups

MAX_LIMIT = 1000


@dataclass(frozen=True, order=True)
class Position:
    depth: int
    stream: int

    def token(self) -> str:
        return f"t{self.depth}_{self.stream}"

    def before(self) -> Position:
        return Position(self.depth, self.stream - 1)


START = Position(0, 0)


def position_of(event: Event) -> Position:
    return Position(event.depth, event.stream_ordering or 0)


def parse_token(room_events: QuerySet[Event], token: str) -> Position:
    """Raises: InvalidParam: not a token this server issued."""
    if token.startswith("t"):
        depth, _, stream = token[1:].partition("_")
        # Backfilled history has negative stream positions (before everything else).
        at_depth, at_stream = parse_position(depth), parse_position(stream.removeprefix("-"))
        if at_depth is not None and at_stream is not None:
            return Position(at_depth, -at_stream if stream.startswith("-") else at_stream)
    elif token.startswith("s"):
        at = parse_position(token[1:].split("_", 1)[0])
        if at is not None:
            last = (
                room_events.filter(stream_ordering__lte=at)
                .order_by("-depth", "-stream_ordering")
                .first()
            )
            return position_of(last) if last is not None else START
    raise InvalidParam(f"Invalid pagination token {token!r}")


def timeline_events(access: RoomAccess) -> QuerySet[Event]:
    """The room's timeline events a reader may page through (up to their leave)."""
    events = Event.objects.filter(room=access.room, stream_ordering__isnull=False, outlier=False)
    if access.left and access.membership_event is not None:
        events = events.filter(_at_or_before(position_of(access.membership_event)))
    return events.select_related("room")


def _after(pos: Position) -> Q:
    return Q(depth__gt=pos.depth) | Q(depth=pos.depth, stream_ordering__gt=pos.stream)


def _at_or_before(pos: Position) -> Q:
    return Q(depth__lt=pos.depth) | Q(depth=pos.depth, stream_ordering__lte=pos.stream)


def _without_ignored(events: QuerySet[Event], viewer: Viewer) -> QuerySet[Event]:
    ignored = viewer.ignored
    return events.exclude(from_ignored(ignored)) if ignored else events


def latest_position(events: QuerySet[Event]) -> Position:
    last = events.order_by("-depth", "-stream_ordering").first()
    return position_of(last) if last is not None else START


def paginate(
    access: RoomAccess,
    viewer: Viewer,
    from_token: str | None,
    to_token: str | None,
    backwards: bool,
    limit: int,
    event_filter: RoomEventFilter,
    operator: bool = False,
) -> JsonDict:
    """The body of GET /messages, without what the reader's ignored users sent;
    ``operator``: a server admin reads every accepted event, whatever the room's history
    visibility (the admin API's room messages)."""
    limit = min(limit, MAX_LIMIT)
    viewer = with_ignored(viewer)
    events = timeline_events(access)
    if from_token is not None:
        start = parse_token(events, from_token)
    else:
        start = latest_position(events) if backwards else START
    query = _without_ignored(events.filter(event_filter.as_q()), viewer)
    if backwards:
        query = query.filter(_at_or_before(start)).order_by("-depth", "-stream_ordering")
        if to_token is not None:
            query = query.filter(_after(parse_token(events, to_token)))
    else:
        query = query.filter(_after(start)).order_by("depth", "stream_ordering")
        if to_token is not None:
            query = query.filter(_at_or_before(parse_token(events, to_token)))
    rows = list(query[:limit])
    visible = (
        [e for e in rows if e.rejected_reason is None and not e.soft_failed]
        if operator
        else filter_visible(viewer.user_id, rows, access.is_joined)
    )
    chunk = [e for e in visible if event_filter.matches_content(stored_pdu(e).get("content", {}))]
    body: JsonDict = {"start": start.token(), "chunk": format_events(chunk, viewer)}
    if len(rows) == limit:
        last = position_of(rows[-1])
        body["end"] = (last.before() if backwards else last).token()
    if event_filter.lazy_load_members and chunk:
        body["state"] = lazy_members(chunk, viewer)
    return body


def lazy_members(chunk: list[Event], viewer: Viewer) -> list[JsonDict]:
    """Member events of the chunk's senders, as of the oldest event of the chunk; a sender
    who joined within the chunk (the room's creator, in its first events) as of the
    newest. The reader's own is included: /messages cannot know what the client holds."""
    oldest, newest = min(chunk, key=position_of), max(chunk, key=position_of)
    keys = [(EventTypes.MEMBER, sender) for sender in {e.sender for e in chunk}]
    before = oldest.state_group_before_id or oldest.state_group_id
    after = newest.state_group_id
    groups = [g for g in (before, after) if g]
    states = states_of_groups(groups, keys) if groups else {}
    state = {**states.get(after, {}), **states.get(before, {})} if groups else {}
    members = Event.objects.filter(event_id__in=state.values()).select_related("room")
    return format_events(list(members), viewer, bundle=False)


def context(
    access: RoomAccess, viewer: Viewer, event: Event, limit: int, event_filter: RoomEventFilter
) -> JsonDict:
    """The body of GET /context/{eventId} (the event itself is checked by the caller; the
    events around it leave out what the reader's ignored users sent)."""
    viewer = with_ignored(viewer)
    events = _without_ignored(timeline_events(access).filter(event_filter.as_q()), viewer)
    here = position_of(event)
    before_n = limit // 2
    after_n = limit - before_n
    before = list(
        events.filter(_at_or_before(here.before())).order_by("-depth", "-stream_ordering")[
            :before_n
        ]
    )
    after = list(events.filter(_after(here)).order_by("depth", "stream_ordering")[:after_n])
    before_visible = filter_visible(viewer.user_id, before, access.is_joined)
    after_visible = filter_visible(viewer.user_id, after, access.is_joined)
    start = position_of(before[-1]).before() if before else here.before()
    end = position_of(after[-1]) if after else here
    state_group = event.state_group_id
    state_ids = states_of_groups([state_group]).get(state_group, {}) if state_group else {}
    if event_filter.lazy_load_members:
        senders = {e.sender for e in [event, *before_visible, *after_visible]}
        state_ids = {
            k: v for k, v in state_ids.items() if k[0] != EventTypes.MEMBER or k[1] in senders
        }
    state_rows = Event.objects.filter(event_id__in=state_ids.values()).select_related("room")
    return {
        "event": format_events([event], viewer)[0],
        "events_before": format_events(before_visible, viewer),
        "events_after": format_events(after_visible, viewer),
        "start": start.token(),
        "end": end.token(),
        "state": format_events(list(state_rows), viewer, bundle=False),
    }


#: Events looked at (oldest or newest first from the timestamp) for one the reader may see.
_TIMESTAMP_SCAN = 200


def event_at_timestamp(access: RoomAccess, viewer: Viewer, ts: int, forwards: bool) -> JsonDict:
    """GET /timestamp_to_event: the first event the reader may see at or after ``ts``
    (``forwards``), or at or before it, by origin_server_ts.

    Raises:
        NotFound: there is none (among the closest events looked at).
    """
    events = timeline_events(access)
    if forwards:
        query = events.filter(origin_server_ts__gte=ts).order_by(
            "origin_server_ts", "stream_ordering"
        )
    else:
        query = events.filter(origin_server_ts__lte=ts).order_by(
            "-origin_server_ts", "-stream_ordering"
        )
    candidates = list(query[:_TIMESTAMP_SCAN])
    visible = {e.event_id for e in filter_visible(viewer.user_id, candidates, access.is_joined)}
    for event in candidates:
        if event.event_id in visible:
            return {"event_id": event.event_id, "origin_server_ts": event.origin_server_ts}
    raise NotFound("No event found in that direction from the timestamp")
