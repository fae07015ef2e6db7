"""Presence (spec "Presence"): its writes, and the reads /sync and the presence API use.

A user's presence is one row, updated in place. A change clients must hear of (state,
status message, currently_active) takes a presence-stream position, last in its
transaction, and wakes the local users who share a joined room with the user, and the
user. Activity alone (a newer ``last_active_ts``) is written at most once a
``LAST_ACTIVE_GRANULARITY_MS``, with no position: readers compute ``last_active_ago``
when they answer.

Syncing keeps a user online (``set_presence``); the periodic job
:func:`expire_idle_presence` turns online users unavailable after ``IDLE_AFTER_MS``
without activity, and users offline after ``OFFLINE_AFTER_MS`` without activity or sync.
With ``MATRIXHS_PRESENCE_ENABLED`` off nothing is stored or sent and everyone reads
offline.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from accounts.models import User
from federation.actions.outbound import share_presence
from matrixhs import sql
from matrixhs.errors import Forbidden, InvalidParam, JsonDict, NotFound
from matrixhs.notifier import notify_users_on_commit
from matrixhs.protocol.events import EventTypes, Membership
from matrixhs.protocol.ids import server_name_of
from matrixhs.streams import Stream, next_position
from matrixhs.time import now_ms
from rooms.models import Event, RoomMembership
from sync.models import Presence

ONLINE = "online"
UNAVAILABLE = "unavailable"
OFFLINE = "offline"
STATES = (ONLINE, UNAVAILABLE, OFFLINE)

IDLE_AFTER_MS = 5 * 60 * 1000
OFFLINE_AFTER_MS = 30 * 60 * 1000
LAST_ACTIVE_GRANULARITY_MS = 60 * 1000
MAX_STATUS_MSG_LENGTH = 4096
#: Rows the periodic job changes per transaction.
EXPIRY_BATCH = 500

#: The fields whose change clients must hear of.
_VISIBLE = ("state", "status_msg", "currently_active")


def presence_enabled() -> bool:
    return bool(settings.MATRIXHS_PRESENCE_ENABLED)


def check_presence_state(state: str) -> str:
    """Raises: InvalidParam: not online, unavailable or offline."""
    if state not in STATES:
        raise InvalidParam(f"Presence must be one of {', '.join(STATES)}")
    return state


def _joined_rooms(user_ids: Iterable[str]) -> Q:
    return Q(
        room__in=RoomMembership.objects.filter(
            user_id__in=list(user_ids), membership=Membership.JOIN
        ).values("room")
    )


def _audience(user_ids: list[str]) -> list[str]:
    """The local users who share a joined room with any of ``user_ids``, and those of
    ``user_ids`` who are local."""
    mates = (
        RoomMembership.objects.filter(_joined_rooms(user_ids), membership=Membership.JOIN)
        .values_list("user_id", flat=True)
        .distinct()
    )
    server_name = settings.MATRIXHS_SERVER_NAME
    return sorted({u for u in [*mates, *user_ids] if server_name_of(u) == server_name})


def _locked_row(user_id: str) -> Presence:
    row, _ = Presence.objects.select_for_update().get_or_create(
        user_id=user_id, defaults={"state": OFFLINE, "stream_id": 0}
    )
    return row


def _apply(row: Presence, fields: JsonDict) -> None:
    """Write ``fields`` to a locked row; a visible change (or a new row) takes a stream
    position and wakes the audience once the transaction commits."""
    visible = row.stream_id == 0 or any(
        getattr(row, name) != fields[name] for name in _VISIBLE if name in fields
    )
    for name, value in fields.items():
        setattr(row, name, value)
    if visible:
        audience = _audience([row.user_id])
        row.stream_id = next_position(Stream.PRESENCE)
        notify_users_on_commit(audience)
    row.save()
    if visible:
        _share([row])


def _share(rows: list[Presence]) -> None:
    """Send our users' changed presence to the servers sharing a room with them."""
    now = now_ms()
    here = settings.MATRIXHS_SERVER_NAME
    pushes = [
        {"user_id": row.user_id, **format_presence(row, now)}
        for row in rows
        if server_name_of(row.user_id) == here
    ]
    if pushes:
        share_presence(pushes)


def receive_remote_presence(user_id: str, content: JsonDict) -> None:
    """The presence another server sent us for one of its users (an ``m.presence`` push
    entry, checked by the caller). It lasts until OFFLINE_AFTER_MS without news."""
    if not presence_enabled():
        return
    now = now_ms()
    ago = content.get("last_active_ago")
    status_msg = content.get("status_msg")
    fields: JsonDict = {
        "state": content["presence"],
        "status_msg": status_msg if isinstance(status_msg, str) else None,
        "currently_active": content.get("currently_active") is True,
        "last_sync_ts": now,
    }
    if isinstance(ago, int) and ago >= 0:
        fields["last_active_ts"] = now - ago
    with transaction.atomic():
        _apply(_locked_row(user_id), fields)


def do_set_presence(user: User, state: str, status_msg: str | None = None) -> None:
    """PUT /presence/{userId}/status: set the state and the status message (None clears
    it). Going online counts as activity.

    Raises:
        InvalidParam: not a presence state, or a status message over
            MAX_STATUS_MSG_LENGTH characters.
    """
    check_presence_state(state)
    if status_msg is not None and len(status_msg) > MAX_STATUS_MSG_LENGTH:
        raise InvalidParam(f"status_msg is at most {MAX_STATUS_MSG_LENGTH} characters")
    if not presence_enabled():
        return
    fields: JsonDict = {
        "state": state,
        "status_msg": status_msg,
        "currently_active": state == ONLINE,
    }
    if state == ONLINE:
        fields["last_active_ts"] = now_ms()
    with transaction.atomic():
        _apply(_locked_row(user.user_id), fields)


#: Users this process marked active lately (a shortcut for the hot path, not a record:
#: the database row is the presence; losing this only costs a read).
_recently_marked: dict[str, tuple[str, int]] = {}
_RECHECK_MS = 30_000


def do_mark_active(user: User, set_presence: str) -> None:
    """/sync's ``set_presence``: "online" (its default) marks the user online and active,
    "unavailable" marks them idle, "offline" changes nothing.

    Cheap on the hot path: one read, and no write at all when the state is already right
    and its timestamp was written less than LAST_ACTIVE_GRANULARITY_MS ago; then one
    UPDATE of the timestamps (no position, nobody woken) until the state changes.

    Raises:
        InvalidParam: ``set_presence`` is not a presence state.
    """
    check_presence_state(set_presence)
    if set_presence == OFFLINE or not presence_enabled():
        return
    now = now_ms()
    marked = _recently_marked.get(user.user_id)
    if marked is not None and marked[0] == set_presence and now - marked[1] < _RECHECK_MS:
        return  # this process saw it right a moment ago: skip even the read
    if len(_recently_marked) > 10_000:
        _recently_marked.clear()
    _recently_marked[user.user_id] = (set_presence, now)
    stamps = {"last_sync_ts": now}
    if set_presence == ONLINE:
        stamps["last_active_ts"] = now
    current = (
        Presence.objects.filter(user_id=user.user_id)
        .values_list("state", "last_active_ts", "last_sync_ts")
        .first()
    )
    if current is not None and current[0] == set_presence:
        stamp = current[1] if set_presence == ONLINE else current[2]
        if now - stamp >= LAST_ACTIVE_GRANULARITY_MS:
            Presence.objects.filter(user_id=user.user_id, state=set_presence).update(**stamps)
        return
    with transaction.atomic():
        row = _locked_row(user.user_id)
        _apply(row, {"state": set_presence, "currently_active": set_presence == ONLINE, **stamps})


def expire_idle_presence(now: int | None = None) -> int:
    """The periodic job (matrixhs.background): online users without activity for
    IDLE_AFTER_MS become unavailable; online or unavailable users with neither activity
    nor a sync for OFFLINE_AFTER_MS go offline. Returns how many users changed."""
    if not presence_enabled():
        return 0
    now = now if now is not None else now_ms()
    idle, gone = now - IDLE_AFTER_MS, now - OFFLINE_AFTER_MS
    due = Q(state=ONLINE, last_active_ts__lt=idle) | Q(
        state__in=[ONLINE, UNAVAILABLE], last_active_ts__lt=gone, last_sync_ts__lt=gone
    )
    changed = 0
    while True:
        with transaction.atomic():
            rows = list(
                Presence.objects.select_for_update().filter(due).order_by("pk")[:EXPIRY_BATCH]
            )
            if not rows:
                return changed
            for row in rows:
                offline = max(row.last_active_ts, row.last_sync_ts) < gone
                row.state = OFFLINE if offline else UNAVAILABLE
                row.currently_active = False
            audience = _audience([row.user_id for row in rows])
            position = next_position(Stream.PRESENCE)
            for row in rows:
                row.stream_id = position
            Presence.objects.bulk_update(rows, ["state", "currently_active", "stream_id"])
            notify_users_on_commit(audience)
            _share(rows)
        changed += len(rows)


# --- Reads ------------------------------------------------------------------------------------


def format_presence(row: Presence, now: int) -> JsonDict:
    """The content of an m.presence event, or of GET /presence/{userId}/status."""
    content: JsonDict = {"presence": row.state}
    if row.last_active_ts:
        content["last_active_ago"] = max(0, now - row.last_active_ts)
    if row.status_msg is not None:
        content["status_msg"] = row.status_msg
    if row.state == ONLINE:
        content["currently_active"] = row.currently_active
    return content


def presence_changes(
    user_id: str, since: int | None, until: int, newly_joined: Iterable[str] = ()
) -> list[JsonDict]:
    """The m.presence events /sync gives ``user_id``: the current presence of each user who
    shares a joined room with them (and their own) that changed in (since, until], oldest
    change first, and that of ``newly_joined`` users (who came to share a room in the
    sync's window; their presence may not have changed). ``since`` None (an initial or
    full-state sync) means every change up to ``until`` of users who are not offline."""
    if not presence_enabled():
        return []
    mates = RoomMembership.objects.filter(
        _joined_rooms([user_id]), membership=Membership.JOIN
    ).values("user_id")
    rows = Presence.objects.filter(Q(user_id__in=mates) | Q(user_id=user_id), stream_id__lte=until)
    if since is None:
        rows = rows.exclude(state=OFFLINE)
    else:
        rows = rows.filter(Q(stream_id__gt=since) | Q(user_id__in=list(newly_joined)))
    now = now_ms()
    return [
        {"type": "m.presence", "sender": row.user_id, "content": format_presence(row, now)}
        for row in rows.order_by("stream_id", "pk")
    ]


#: Join events in the user's joined rooms within a window of positions (every incremental
#: /sync with presence on asks, so the query is written out once).
_JOINS_SQL = (
    f"SELECT e.room_id, e.state_key FROM {Event._meta.db_table} e "
    f"WHERE e.room_id IN (SELECT m.room_id FROM {RoomMembership._meta.db_table} m "
    f"WHERE m.user_id = %s AND m.membership = '{Membership.JOIN}') "
    f"AND e.type = '{EventTypes.MEMBER}' AND e.membership = '{Membership.JOIN}' "
    "AND e.stream_ordering > %s AND e.stream_ordering <= %s"
)


def newly_joined_users(user_id: str, since: int, until: int) -> set[str]:
    """The users who came to share a joined room with ``user_id`` between two events
    stream positions: those who joined one of the user's rooms, and every member of a
    room the user joined."""
    joins = sql.rows(_JOINS_SQL, [user_id, since, until])
    users = {state_key for _, state_key in joins if state_key}
    own = {room_pk for room_pk, state_key in joins if state_key == user_id}
    if own:
        users |= set(
            RoomMembership.objects.filter(room__in=own, membership=Membership.JOIN).values_list(
                "user_id", flat=True
            )
        )
    users.discard(user_id)
    return users


def current_presence(user_ids: Iterable[str]) -> dict[str, JsonDict]:
    """The presence content of each user (offline when unknown, or presence is off)."""
    wanted = list(user_ids)
    result: dict[str, JsonDict] = {user_id: {"presence": OFFLINE} for user_id in wanted}
    if not presence_enabled():
        return result
    now = now_ms()
    for row in Presence.objects.filter(user_id__in=wanted):
        result[row.user_id] = format_presence(row, now)
    return result


def access_presence(viewer_id: str, user_id: str) -> None:
    """Users see their own presence and that of users they share a joined room with.

    Raises:
        NotFound: a local user that does not exist.
        Forbidden: no joined room in common.
    """
    if viewer_id == user_id:
        return
    if server_name_of(user_id) == settings.MATRIXHS_SERVER_NAME and not (
        User.objects.filter(user_id=user_id).exists()
    ):
        raise NotFound("Unknown user")
    shared = RoomMembership.objects.filter(
        _joined_rooms([viewer_id]), user_id=user_id, membership=Membership.JOIN
    ).exists()
    if not shared:
        raise Forbidden("You are not allowed to see their presence")
