"""GET /sync (the classic, "v2" sync): the response for one user and device.

``sync_for_user`` reads everything from the database (and the typing cache) as of one
token, read first; it never waits. The long-poll (sync/consumers.py) calls it again
when woken. A room appears when something in it changed since the client's token;
state is the full state for new rooms and initial syncs, and the difference between
the token and the start of the timeline for gappy ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from accounts.models import AccountData, User
from accounts.queries import ignored_users
from e2ee.actions.to_device import delete_to_device_up_to
from e2ee.queries import (
    device_list_changes,
    key_counts,
    signature_changes,
    to_device_messages,
)
from matrixhs.errors import JsonDict
from matrixhs.filters import Filter, RoomEventFilter
from matrixhs.protocol.events import EventTypes, Membership
from matrixhs.tokens import SyncToken, current_token
from push.queries import format_unread, unread_counts
from rooms.models import Event, Room
from rooms.queries.format import Viewer, format_events
from sync import rooms as data
from sync.actions import typing_in_rooms
from sync.presence import newly_joined_users, presence_changes, presence_enabled

DEFAULT_TIMELINE_LIMIT = 10
MAX_TIMELINE_LIMIT = 1000
TO_DEVICE_LIMIT = 100


@dataclass(frozen=True)
class SyncRequest:
    user: User
    device_id: str | None
    since: SyncToken | None
    full_state: bool = False
    filter: Filter = field(default_factory=Filter)

    @property
    def timeline(self) -> RoomEventFilter:
        return self.filter.room.timeline

    @property
    def state(self) -> RoomEventFilter:
        return self.filter.room.state

    @property
    def include_leave(self) -> bool:
        return self.filter.room.include_leave


@dataclass
class SyncResult:
    body: JsonDict
    has_changes: bool
    #: When a typing notification seen here runs out (ms): wake up then and look again.
    next_typing_expiry_ms: int | None = None


def sync_for_user(request: SyncRequest) -> SyncResult:
    """Build one /sync response (no waiting).

    A section is only read when its stream moved since the client's token (or on initial
    and full-state syncs): an idle incremental sync costs a handful of queries.
    """
    now = current_token()
    since = request.since
    moved = _Moved(since, now, request.full_state)
    viewer = Viewer(request.user.user_id, request.device_id)
    rooms_body, typing_expiry, members_moved = {}, None, False
    if moved.any("events", "receipts", "account_data", "typing"):
        rooms_body, typing_expiry, members_moved = _rooms(request, since, now, viewer, moved)
    body: JsonDict = {"next_batch": now.encode(), "rooms": rooms_body}
    account_data = (
        request.filter.account_data.apply(_global_account_data(request.user, since, now))
        if moved.any("account_data")
        else []
    )
    to_device, to_device_position = (
        _to_device(request, since, now) if moved.any("to_device") else ([], now.to_device)
    )
    device_lists = (
        device_list_delta(request.user.user_id, since, now, members_moved)
        if moved.any("device_lists", "events")
        else {}
    )
    presence = (
        request.filter.presence.apply(_presence(request, since, now, moved))
        if moved.any("presence", "events")
        else []
    )
    for key, section in (
        ("account_data", account_data),
        ("presence", presence),
        ("to_device", to_device),
    ):
        if section:
            body[key] = {"events": section}
    if device_lists:
        body["device_lists"] = device_lists
    if request.device_id is not None:
        counts, fallback = key_counts(request.user, request.device_id)
        body["device_one_time_keys_count"] = counts
        body["device_unused_fallback_key_types"] = fallback
    if to_device_position != now.to_device:
        body["next_batch"] = now.with_(to_device=to_device_position).encode()
    has_changes = since is None or bool(
        rooms_body or account_data or to_device or device_lists or presence
    )
    return SyncResult(body, has_changes, typing_expiry)


class _Moved:
    """Which streams moved between the client's token and now (all, without a token)."""

    def __init__(self, since: SyncToken | None, now: SyncToken, full_state: bool) -> None:
        self.since, self.now, self.everything = since, now, since is None or full_state

    def any(self, *streams: str) -> bool:
        if self.everything or self.since is None:
            return True
        return any(getattr(self.since, s) != getattr(self.now, s) for s in streams)


# --- rooms ----------------------------------------------------------------------------------


def _wanted(request: SyncRequest, room: Room) -> bool:
    return request.filter.room.allows_room(room.room_id)


def _rooms(
    request: SyncRequest, since: SyncToken | None, now: SyncToken, viewer: Viewer, moved: _Moved
) -> tuple[JsonDict, int | None, bool]:
    """The rooms section, the next typing expiry, and whether anyone may have come or gone
    in the user's rooms (which decides whether device lists must look)."""
    user_id = request.user.user_id
    memberships = [
        m
        for m in data.current_memberships(user_id, now.events, since and since.events)
        if _wanted(request, m.room)
    ]
    changes = (
        data.membership_changes(user_id, since.events, now.events)
        if since is not None and moved.any("events")
        else {}
    )
    joined = [m.room for m in memberships if m.membership == Membership.JOIN]
    newly_joined = {pk for pk, c in changes.items() if c.membership == Membership.JOIN}
    # Spec "Ignoring Users": what ignored users send (but state) and their invites are not
    # sent to the client; a change of the list applies from the next response on.
    ignored = ignored_users(request.user)
    viewer = replace(viewer, ignored=ignored)
    join_body, typing_expiry, members_moved = _joined_rooms(
        request, joined, newly_joined, since, now, viewer, moved, ignored
    )
    invites = _stripped_section(
        [m for m in memberships if m.membership != Membership.INVITE or m.sender not in ignored],
        changes,
        since,
        Membership.INVITE,
        "invite_state",
    )
    knocks = _stripped_section(memberships, changes, since, Membership.KNOCK, "knock_state")
    leaves = _left_rooms(request, memberships, changes, since, now, viewer, ignored)
    body: JsonDict = {}
    for name, section in (
        ("join", join_body),
        ("invite", invites),
        ("knock", knocks),
        ("leave", leaves),
    ):
        if section:
            body[name] = section
    return body, typing_expiry, members_moved or bool(changes)


def _joined_rooms(
    request: SyncRequest,
    rooms: list[Room],
    newly_joined: set[int],
    since: SyncToken | None,
    now: SyncToken,
    viewer: Viewer,
    moved: _Moved,
    ignored: frozenset[str],
) -> tuple[JsonDict, int | None, bool]:
    if not rooms:
        return {}, None, False
    user_id = request.user.user_id
    limit = min(request.timeline.limit or DEFAULT_TIMELINE_LIMIT, MAX_TIMELINE_LIMIT)
    fresh = {r.pk for r in rooms if since is None or r.pk in newly_joined}
    # Rooms seen afresh (initial sync, just joined) get their latest events and full
    # state; the others what happened since the token (with full state if asked for).
    full = fresh | ({r.pk for r in rooms} if request.full_state else set())
    timelines = data.timelines(
        [r for r in rooms if r.pk in fresh], None, now.events, limit, request.timeline, ignored
    )
    if since is not None:
        others = [r for r in rooms if r.pk not in fresh]
        timelines.update(
            data.timelines(others, since.events, now.events, limit, request.timeline, ignored)
            if moved.any("events")
            else {r.pk: ([], False) for r in others}
        )
    states = _room_states(request, rooms, timelines, full, since, viewer)
    receipts = (
        data.receipts(rooms, user_id, None if since is None else since.receipts, now.receipts)
        if moved.any("receipts") or fresh
        else {}
    )
    account = (
        data.room_account_data(
            request.user, rooms, None if since is None else since.account_data, now.account_data
        )
        if moved.any("account_data") or fresh
        else {}
    )
    typing = (
        typing_in_rooms([r.room_id for r in rooms], lambda: _local_members_by_room(rooms))
        if moved.any("typing") or fresh
        else {}
    )
    # The summary goes with rooms seen afresh and rooms whose membership may have moved.
    moving = {
        r.pk
        for r in rooms
        if timelines[r.pk][1] or any(e.type == EventTypes.MEMBER for e in timelines[r.pk][0])
    }
    summaries = data.summaries([r for r in rooms if r.pk in full | moving], user_id)
    # A user joined since the token saw every event after it; only rooms seen afresh
    # need the history visibility rules.
    fresh_events = data.visible(
        user_id, [e for r in rooms if r.pk in fresh for e in timelines[r.pk][0]]
    )
    live_events = [e for r in rooms if r.pk not in fresh for e in timelines[r.pk][0]]
    formatted = {e["event_id"]: e for e in format_events(fresh_events + live_events, viewer)}
    unread = unread_counts(user_id, [r.pk for r in rooms], now.events)
    by_thread = request.timeline.unread_thread_notifications
    body: JsonDict = {}
    expiry = None
    for room in rooms:
        events, limited = timelines[room.pk]
        ephemeral = []
        room_typing = typing.get(room.room_id)
        if room_typing is not None:
            if since is None or room_typing.position > since.typing or since.typing > now.typing:
                if since is not None or room_typing.users:
                    ephemeral.append(
                        {"type": "m.typing", "content": {"user_ids": room_typing.users}}
                    )
            if room_typing.next_expiry_ms is not None:
                expiry = min(expiry or room_typing.next_expiry_ms, room_typing.next_expiry_ms)
        if room.pk in receipts:
            ephemeral.append({"type": "m.receipt", "content": receipts[room.pk]})
        ephemeral = [
            e
            for e in ephemeral
            if request.filter.room.ephemeral.matches({**e, "room_id": room.room_id})
        ]
        timeline = [
            request.filter.project(formatted[e.event_id]) for e in events if e.event_id in formatted
        ]
        state = [request.filter.project(e) for e in states.get(room.pk, [])]
        room_account = [
            e
            for e in account.get(room.room_id, [])
            if request.filter.room.account_data.matches({**e, "room_id": room.room_id})
        ]
        if (
            since is not None
            and room.pk not in full
            and not (timeline or state or ephemeral or room_account)
        ):
            continue
        entry: JsonDict = {
            "timeline": {
                "events": timeline,
                "limited": limited,
                "prev_batch": _prev_batch(events, since, now),
            },
            "state": {"events": state},
            "ephemeral": {"events": ephemeral},
            "account_data": {"events": room_account},
        }
        if room.pk in summaries:
            entry["summary"] = summaries[room.pk]
        entry.update(format_unread(unread.get(room.pk, {}), by_thread))
        body[room.room_id] = entry
    return body, expiry, bool(moving)


def _prev_batch(events: list[Event], since: SyncToken | None, now: SyncToken) -> str:
    """A /messages token just before the timeline (its first event's stream position - 1)."""
    if events:
        return f"s{(events[0].stream_ordering or 1) - 1}"
    return f"s{now.events}"


def _room_states(
    request: SyncRequest,
    rooms: list[Room],
    timelines: dict[int, tuple[list[Event], bool]],
    full: set[int],
    since: SyncToken | None,
    viewer: Viewer,
) -> dict[int, list[JsonDict]]:
    """The state section of each room: full state at the timeline's start for ``full``
    rooms; for gappy incremental syncs, what changed between the token and that start."""
    user_id = request.user.user_id
    start_group: dict[int, int | None] = {}
    for room in rooms:
        events, limited = timelines[room.pk]
        if room.pk in full or limited:
            start_group[room.pk] = (
                events[0].state_group_before_id if events else room.current_state_group_id
            )
    if not start_group:
        return {}
    gappy = [r for r in rooms if r.pk in start_group and r.pk not in full]
    since_events = data.last_events_at(gappy, since.events) if since is not None and gappy else {}
    groups = list(start_group.values()) + [e.state_group_id for e in since_events.values()]
    maps = data.state_maps(groups)
    lazy = request.state.lazy_load_members
    wanted: dict[int, set[str]] = {}
    for room_pk, group in start_group.items():
        state = maps.get(group or -1, {})
        if room_pk not in full and room_pk in since_events:
            before = maps.get(since_events[room_pk].state_group_id or -1, {})
            state = {k: v for k, v in state.items() if before.get(k) != v}
        if lazy:
            keys = data.lazy_member_keys(timelines[room_pk][0], user_id)
            state = {k: v for k, v in state.items() if k[0] != EventTypes.MEMBER or k in keys}
        in_timeline = {e.event_id for e in timelines[room_pk][0]}
        wanted[room_pk] = {v for v in state.values() if v not in in_timeline}
    formatted = data.state_events(
        {e for ids in wanted.values() for e in ids}, viewer, request.state
    )
    return {pk: [formatted[e] for e in sorted(ids) if e in formatted] for pk, ids in wanted.items()}


def _local_members_by_room(rooms: list[Room]) -> dict[str, list[str]]:
    from rooms.models import RoomMembership

    members: dict[str, list[str]] = {}
    for room_id, user_id in RoomMembership.objects.filter(
        room__in=rooms, membership="join"
    ).values_list("room__room_id", "user_id"):
        if data.is_local(user_id):
            members.setdefault(room_id, []).append(user_id)
    return members


def _stripped_section(
    memberships: list[Any],
    changes: dict[int, data.MembershipChange],
    since: SyncToken | None,
    membership: str,
    key: str,
) -> JsonDict:
    rooms = [
        m.room
        for m in memberships
        if m.membership == membership and (since is None or m.room.pk in changes)
    ]
    if not rooms:
        return {}
    own = {m.room.pk: m.event_id for m in memberships if m.room in rooms}
    stripped = data.stripped_state(rooms, own)
    return {room.room_id: {key: {"events": stripped.get(room.pk, [])}} for room in rooms}


def _left_rooms(
    request: SyncRequest,
    memberships: list[Any],
    changes: dict[int, data.MembershipChange],
    since: SyncToken | None,
    now: SyncToken,
    viewer: Viewer,
    ignored: frozenset[str],
) -> JsonDict:
    """Rooms the user left (or was kicked or banned from) since the token: their timeline
    up to the leave, and the state then. On initial syncs only with include_leave."""
    left = [m for m in memberships if m.membership in (Membership.LEAVE, Membership.BAN)]
    if since is None and not request.include_leave:
        return {}
    if since is not None:
        left = [m for m in left if m.room.pk in changes]
    body: JsonDict = {}
    limit = request.timeline.limit or DEFAULT_TIMELINE_LIMIT
    for membership in left:
        leave = Event.objects.filter(event_id=membership.event_id).first()
        if leave is None or leave.stream_ordering is None:
            continue
        after = None if since is None else since.events
        events, limited = data.timelines(
            [membership.room], after, leave.stream_ordering, limit, request.timeline, ignored
        )[membership.room.pk]
        events = data.visible(request.user.user_id, events)
        start = events[0].state_group_before_id if events else leave.state_group_id
        # As for joined rooms: an incremental sync has the state between the token and
        # the timeline's start (none when the timeline has all since the token).
        at_since = None
        if since is not None and limited:
            last = data.last_events_at([membership.room], since.events).get(membership.room.pk)
            at_since = last.state_group_id if last is not None else None
        maps = data.state_maps([start, at_since])
        state = maps.get(start or -1, {}) if since is None or limited or not events else {}
        before = maps.get(at_since or -1, {})
        ids = [v for k, v in state.items() if before.get(k) != v]
        state_events = data.state_events(
            set(ids) - {e.event_id for e in events}, viewer, request.state
        )
        body[membership.room.room_id] = {
            "timeline": {
                "events": format_events(events, viewer),
                "limited": limited,
                "prev_batch": _prev_batch(events, since, now),
            },
            "state": {"events": list(state_events.values())},
            "account_data": {"events": []},
        }
    return body


def _presence(
    request: SyncRequest, since: SyncToken | None, now: SyncToken, moved: _Moved
) -> list[JsonDict]:
    """Presence changes, and the presence of users newly sharing a room with the user."""
    if not presence_enabled():
        return []
    user_id = request.user.user_id
    if since is None or request.full_state:
        return presence_changes(user_id, None, now.presence)
    newly_joined = (
        newly_joined_users(user_id, since.events, now.events) if moved.any("events") else set()
    )
    if not newly_joined and not moved.any("presence"):
        return []
    return presence_changes(user_id, since.presence, now.presence, newly_joined)


# --- everything else ------------------------------------------------------------------------


def _global_account_data(user: User, since: SyncToken | None, now: SyncToken) -> list[JsonDict]:
    query = AccountData.objects.filter(user=user, room_id="", stream_id__lte=now.account_data)
    if since is not None:
        query = query.filter(stream_id__gt=since.account_data)
    events = [{"type": t, "content": c} for t, c in query.values_list("type", "content")]
    if since is None and not any(e["type"] == "m.push_rules" for e in events):
        events.extend(initial_push_rules(user))
    return events


def initial_push_rules(user: User) -> list[JsonDict]:
    """Clients expect m.push_rules in the initial sync's account data."""
    try:
        from push.queries import push_rules_content
    except ImportError:
        return []
    return [{"type": "m.push_rules", "content": push_rules_content(user)}]


def _to_device(
    request: SyncRequest, since: SyncToken | None, now: SyncToken
) -> tuple[list[JsonDict], int]:
    if request.device_id is None:
        return [], now.to_device
    after = since.to_device if since is not None else 0
    if after:
        delete_to_device_up_to(request.user, request.device_id, after)  # acknowledged
    return to_device_messages(
        request.user, request.device_id, after, TO_DEVICE_LIMIT, now.to_device
    )


def device_list_delta(
    user_id: str, since: SyncToken | None, now: SyncToken, members_moved: bool = True
) -> JsonDict:
    """Users whose keys the client must (re)fetch: their devices changed, or they now
    share a room with the user; and users who no longer share any room ("left").
    ``members_moved`` False (no membership event in sight) skips looking for arrivals."""
    if since is None:
        return {}
    joined, departed = (
        data.membership_movements(user_id, since.events, now.events)
        if since.events != now.events and members_moved
        else (set(), set())
    )
    keys_moved = since.device_lists < now.device_lists
    if not (keys_moved or joined or departed):
        return {}
    sharing = data.users_sharing_rooms(user_id)
    changed: set[str] = set()
    if keys_moved:
        changed |= device_list_changes(since.device_lists, now.device_lists) & sharing
        changed |= signature_changes(user_id, since.device_lists, now.device_lists)
    changed |= joined & sharing
    left = departed - sharing
    body: JsonDict = {}
    if changed:
        body["changed"] = sorted(changed)
    if left:
        body["left"] = sorted(left)
    return body
