"""Membership changes: join, invite, leave, kick, ban, unban, knock, forget.

Each builds the m.room.member content and sends it through rooms.events; the auth rules
decide. The state endpoint's m.room.member events go through the same actions
(``do_set_membership``), so that their checks (restricted joins, guest access, invitee
and kick/unban targets) cannot be side-stepped.

A room this server is not in (none of its users is joined) lives on other servers:
joining, knocking, and leaving it while only invited or knocking go through one of
them (federation.actions.remote_rooms), as does inviting a user of another server.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import User
from accounts.queries import Requester
from matrixhs.errors import BadJson, Codes, Forbidden, InvalidParam, JsonDict, MatrixError, NotFound
from matrixhs.protocol.events import EventTypes, JoinRules, Membership
from matrixhs.protocol.ids import InvalidIdentifier, parse_user_id, server_name_of
from matrixhs.protocol.room_versions import get_room_version
from rooms.actions.blocking import check_room_not_blocked
from rooms.actions.user_directory import refresh_users
from rooms.events import (
    current_power_levels,
    current_state_ids,
    load_pdus,
    lock_room,
    send_in_locked_room,
)
from rooms.models import Event, Room, RoomMembership

logger = logging.getLogger(__name__)

#: Computed by the server for restricted joins (spec "Restricted rooms"), never a client's.
AUTHORISER = "join_authorised_via_users_server"
GUEST_ACCESS_KEY = (EventTypes.GUEST_ACCESS, "")
GUEST_CAN_JOIN = "can_join"
_MEMBERSHIPS = frozenset(
    {Membership.JOIN, Membership.INVITE, Membership.LEAVE, Membership.BAN, Membership.KNOCK}
)
#: What guests may do to their own membership (the membership endpoints they may call).
_GUEST_MEMBERSHIPS = frozenset({Membership.JOIN, Membership.LEAVE})

logger = logging.getLogger(__name__)


def member_content(user: User, membership: str) -> JsonDict:
    """m.room.member content with the user's profile (display name and avatar)."""
    content: JsonDict = {"membership": membership}
    if user.displayname is not None:
        content["displayname"] = user.displayname
    if user.avatar_url:
        content["avatar_url"] = user.avatar_url
    return content


def is_local(user_id: str) -> bool:
    return server_name_of(user_id) == settings.MATRIXHS_SERVER_NAME


def is_resident(room_id: str) -> bool:
    """Whether this server is in the room: one of its users is joined (it then holds the
    room's state and sends its events itself)."""
    return RoomMembership.objects.filter(
        room__room_id=room_id,
        membership=Membership.JOIN,
        user_id__endswith=f":{settings.MATRIXHS_SERVER_NAME}",
    ).exists()


def remote_servers(room_id: str, user_id: str, via: Sequence[str] = ()) -> list[str]:
    """The other servers to reach a room through: those the client named, the one in the
    room ID (before room version 12), and those of the user's invite or knock."""
    from federation.actions.remote_rooms import invite_servers

    servers = list(via)
    if ":" in room_id:
        servers.append(room_id.split(":", 1)[1])
    servers.extend(invite_servers(room_id, user_id))
    ours = settings.MATRIXHS_SERVER_NAME
    return [s for s in dict.fromkeys(servers) if s and s != ours]


def _federation_enabled(action: str) -> None:
    if not settings.MATRIXHS_FEDERATION_ENABLED:
        raise Forbidden(f"Cannot {action}: federation is disabled on this server")


def current_membership(room: Room, user_id: str) -> str | None:
    return (
        RoomMembership.objects.filter(room=room, user_id=user_id)
        .values_list("membership", flat=True)
        .first()
    )


#: Keys of a /join body that are not member content.
_JOIN_REQUEST_KEYS = frozenset({"reason", "third_party_signed", "membership", AUTHORISER})


def join_extra_content(body: JsonDict) -> JsonDict:
    """The keys of a /join body to add to the member event, as Synapse does and bridges
    rely on (a per-room display name, markers of their own); the spec's keys, the
    membership and the authoriser a server chooses are not among them.

    Raises:
        BadJson: displayname or avatar_url is not a string.
    """
    extra = {key: value for key, value in body.items() if key not in _JOIN_REQUEST_KEYS}
    for key in ("displayname", "avatar_url"):
        if key in extra and not isinstance(extra[key], str):
            raise BadJson(f"{key} must be a string")
    return extra


def _with_reason(content: JsonDict, reason: Any) -> JsonDict:
    if isinstance(reason, str):
        content["reason"] = reason
    return content


def _client_content(content: JsonDict, membership: str) -> JsonDict:
    """Member content a client wrote (state endpoint): its keys are kept, except those the
    server computes itself (the authoriser of a restricted join is chosen by the server
    and vouched for by its signature; a client never names it)."""
    kept = {key: value for key, value in content.items() if key != AUTHORISER}
    kept["membership"] = membership
    return kept


def _with_profile(content: JsonDict, user: User | None) -> JsonDict:
    """Fill in the user's display name and avatar where the content has none."""
    if user is not None:
        for key, value in member_content(user, content["membership"]).items():
            content.setdefault(key, value)
    return content


def _send_member(room_id: str, sender: str, target: str, content: JsonDict) -> Event:
    with transaction.atomic():
        room = lock_room(room_id)
        return send_in_locked_room(room, sender, EventTypes.MEMBER, content, target)


def do_join(
    user: User,
    room_id: str,
    reason: Any = None,
    via: Sequence[str] = (),
    extra: JsonDict | None = None,
) -> Event | None:
    """Join a room (None: already joined with the same profile); a room this server is
    not in is joined through ``via`` and the other servers that know it. ``extra``: keys
    the client added to the member event's content (:func:`join_extra_content`).

    Raises:
        NotFound: the room is unknown here and no server let us in.
        Forbidden: the join rules refuse, a guest joins a room closed to guests, or an
            operator blocked the room.
    """
    check_room_not_blocked(room_id)
    content = {**member_content(user, Membership.JOIN), **(extra or {})}
    content = _with_reason(content, reason)
    if not is_resident(room_id):
        servers = remote_servers(room_id, user.user_id, via)
        if servers:
            return _join_remote(user, room_id, servers, content)
    with transaction.atomic():
        room = lock_room(room_id)
        membership = RoomMembership.objects.filter(room=room, user_id=user.user_id).first()
        if (
            membership is not None
            and membership.membership == Membership.JOIN
            and not extra
            and (membership.displayname, membership.avatar_url)
            == (content.get("displayname"), content.get("avatar_url"))
        ):
            return None
        current = membership.membership if membership is not None else None
        return _join_locked(room, user, content, current)


def _join_remote(user: User, room_id: str, servers: list[str], content: JsonDict) -> Event:
    from federation import peers
    from federation.actions.remote_rooms import join_remote_room

    _federation_enabled("join a room on another server")
    if user.is_guest:
        raise Forbidden("Guests may not join rooms on other servers", Codes.GUEST_ACCESS_FORBIDDEN)
    content.pop(AUTHORISER, None)
    return join_remote_room(user, room_id, servers, content, peers.remote(), peers.verify_event)


def _join_locked(room: Room, user: User, content: JsonDict, current: str | None) -> Event:
    if user.is_guest and not guests_can_join(room):
        raise Forbidden("Guests may not join this room", Codes.GUEST_ACCESS_FORBIDDEN)
    if current not in (Membership.JOIN, Membership.INVITE):
        authoriser = restricted_join_authoriser(room, user.user_id)
        if authoriser is not None:
            content[AUTHORISER] = authoriser
    return send_in_locked_room(room, user.user_id, EventTypes.MEMBER, content, user.user_id)


def guests_can_join(room: Room) -> bool:
    """Spec "Guest access": only with ``m.room.guest_access`` present and ``can_join``."""
    state = current_state_ids(room, [GUEST_ACCESS_KEY])
    pdus = load_pdus(state.values())
    content = pdus.get(state.get(GUEST_ACCESS_KEY, ""), {}).get("content", {})
    return isinstance(content, dict) and content.get("guest_access") == GUEST_CAN_JOIN


def do_remove_guests(room: Room) -> None:
    """The room's guest access stopped being ``can_join``: its local guests leave (spec
    "Guest access", server behaviour). Each guest leaves by itself, which needs no power
    level. The caller holds the room's lock."""
    members = RoomMembership.objects.filter(
        room=room, membership__in=(Membership.JOIN, Membership.INVITE)
    ).values("user_id")
    guests = User.objects.filter(is_guest=True, user_id__in=members)
    for guest in guests.values_list("user_id", flat=True):
        content = {"membership": Membership.LEAVE}
        send_in_locked_room(room, guest, EventTypes.MEMBER, content, guest)


def restricted_join_authoriser(room: Room, user_id: str) -> str | None:
    """For restricted rooms: a local member who may invite, if the user is in an allowed
    room (spec "Restricted rooms"); None when the room is not restricted or nobody can."""
    rv = get_room_version(room.room_version)
    if not rv.restricted_join_rule:
        return None
    state = current_state_ids(room, [(EventTypes.JOIN_RULES, "")])
    pdus = load_pdus(state.values())
    join_rules = pdus.get(state.get((EventTypes.JOIN_RULES, ""), ""), {}).get("content", {})
    if join_rules.get("join_rule") not in (JoinRules.RESTRICTED, JoinRules.KNOCK_RESTRICTED):
        return None
    allowed = [
        entry.get("room_id")
        for entry in join_rules.get("allow", [])
        if isinstance(entry, dict) and entry.get("type") == "m.room_membership"
    ]
    if not RoomMembership.objects.filter(
        room__room_id__in=[r for r in allowed if isinstance(r, str)],
        user_id=user_id,
        membership=Membership.JOIN,
    ).exists():
        return None
    levels = current_power_levels(room)
    suffix = f":{settings.MATRIXHS_SERVER_NAME}"
    for member in RoomMembership.objects.filter(
        room=room, membership=Membership.JOIN, user_id__endswith=suffix
    ).values_list("user_id", flat=True):
        if levels.user_level(member) >= levels.named_level("invite"):
            return member
    return None


def do_invite(
    inviter: str,
    room_id: str,
    invitee: str,
    reason: Any = None,
    is_direct: bool = False,
    *,
    content: JsonDict | None = None,
) -> Event:
    """Invite a user; ``content`` is the client's own (state endpoint), else it is built.

    Raises:
        Forbidden: not allowed (auth rules), or the invitee's server refused.
        NotFound: no such local user.
    """
    from rooms.actions.create import invite_content

    check_room_not_blocked(room_id)
    if not is_local(invitee):
        return _invite_remote(inviter, room_id, invitee, reason, is_direct, content)
    target = User.objects.filter(user_id=invitee, is_active=True).first()
    if target is None:
        raise NotFound(f"Unknown user {invitee}")
    if content is None:
        content = invite_content(invitee, is_direct, reason)
    else:
        content = _with_profile(_client_content(content, Membership.INVITE), target)
    return _send_member(room_id, inviter, invitee, content)


def _invite_remote(
    inviter: str,
    room_id: str,
    invitee: str,
    reason: Any,
    is_direct: bool,
    content: JsonDict | None,
) -> Event:
    """The invitee's server signs the invite first (federation /invite)."""
    from federation import peers
    from federation.actions.remote_rooms import invite_remote_user
    from rooms.actions.create import invite_content

    _federation_enabled(f"invite {invitee}")
    if content is None:
        content = invite_content(invitee, is_direct, reason)
    else:
        content = _client_content(content, Membership.INVITE)
    with transaction.atomic():
        room = lock_room(room_id)
        if current_membership(room, invitee) in (Membership.JOIN, Membership.BAN):
            raise Forbidden(f"{invitee} is already in the room or banned")
    return invite_remote_user(
        inviter, room_id, invitee, content, peers.remote(), peers.verify_event
    )


def do_leave(user_id: str, room_id: str, reason: Any = None) -> Event | None:
    """Leave (or reject an invite, or withdraw a knock). None: already left. An invite
    to, or a knock on, a room this server is not in is rejected through the servers of
    that room; when no other server has a part in it (a local room whose local members
    all left) and its state is here, the leave is an ordinary event of this server."""
    if not is_resident(room_id):
        membership = (
            RoomMembership.objects.filter(room__room_id=room_id, user_id=user_id)
            .values_list("membership", flat=True)
            .first()
        )
        if membership in (Membership.INVITE, Membership.KNOCK) and not (
            _holds_state(room_id) and not remote_servers(room_id, user_id)
        ):
            return _leave_remote(user_id, room_id, _with_reason({}, reason))
    with transaction.atomic():
        room = lock_room(room_id)
        if current_membership(room, user_id) == Membership.LEAVE:
            return None
        content = _with_reason({"membership": Membership.LEAVE}, reason)
        return send_in_locked_room(room, user_id, EventTypes.MEMBER, content, user_id)


def _holds_state(room_id: str) -> bool:
    """Whether this server has the room's state (not only an invite's stripped state)."""
    return Room.objects.filter(room_id=room_id, current_state_group__isnull=False).exists()


#: Memberships a deactivated account gives up, a batch at a time.
DEACTIVATED_BATCH = 100


def leave_rooms_of_deactivated_users(user_id: str | None = None) -> int:
    """Deactivated accounts leave every room they are in, reject their invites and
    withdraw their knocks. The memberships themselves are the work list, so a crash
    half-way is resumed by the next run (a periodic job, and the deactivation itself, for
    ``user_id``). Returns how many memberships were ended."""
    suffix = f":{settings.MATRIXHS_SERVER_NAME}"
    inactive = User.objects.filter(is_active=False).values("user_id")
    if user_id is not None:
        inactive = inactive.filter(user_id=user_id)
    rows = list(
        RoomMembership.objects.filter(
            user_id__in=inactive,
            user_id__endswith=suffix,
            membership__in=(Membership.JOIN, Membership.INVITE, Membership.KNOCK),
        )
        .values_list("user_id", "room__room_id")
        .order_by("pk")[:DEACTIVATED_BATCH]
    )
    ended = 0
    for member, room_id in rows:
        try:
            do_leave(member, room_id, reason="Account deactivated")
            ended += 1
        except MatrixError as exc:  # tried again by the next run
            logger.warning("Deactivated %s could not leave %s: %s", member, room_id, exc)
    return ended


def _leave_remote(user_id: str, room_id: str, content: JsonDict) -> Event | None:
    from federation import peers
    from federation.actions.remote_rooms import leave_remote_room

    user = User.objects.get(user_id=user_id)
    servers = remote_servers(room_id, user_id)
    if not settings.MATRIXHS_FEDERATION_ENABLED:
        servers = []  # rejected here only
    return leave_remote_room(user, room_id, servers, content, peers.remote())


def _other_content(content: JsonDict | None, membership: str, reason: Any) -> JsonDict:
    if content is not None:
        return _client_content(content, membership)
    return _with_reason({"membership": membership}, reason)


def do_kick(
    sender: str,
    room_id: str,
    target: str,
    reason: Any = None,
    *,
    content: JsonDict | None = None,
) -> Event:
    """Raises: Forbidden: the target is not in the room, or the auth rules refuse."""
    with transaction.atomic():
        room = lock_room(room_id)
        if current_membership(room, target) not in (
            Membership.JOIN,
            Membership.INVITE,
            Membership.KNOCK,
        ):
            raise Forbidden(f"{target} is not in the room")
        content = _other_content(content, Membership.LEAVE, reason)
        return send_in_locked_room(room, sender, EventTypes.MEMBER, content, target)


def do_ban(
    sender: str,
    room_id: str,
    target: str,
    reason: Any = None,
    *,
    content: JsonDict | None = None,
) -> Event:
    """Raises: Forbidden: the auth rules refuse."""
    content = _other_content(content, Membership.BAN, reason)
    return _send_member(room_id, sender, target, content)


def do_unban(
    sender: str,
    room_id: str,
    target: str,
    reason: Any = None,
    *,
    content: JsonDict | None = None,
) -> Event:
    """Raises: Forbidden: the target is not banned, or the auth rules refuse."""
    with transaction.atomic():
        room = lock_room(room_id)
        if current_membership(room, target) != Membership.BAN:
            raise Forbidden(f"{target} is not banned")
        content = _other_content(content, Membership.LEAVE, reason)
        return send_in_locked_room(room, sender, EventTypes.MEMBER, content, target)


def do_knock(
    user: User,
    room_id: str,
    reason: Any = None,
    *,
    content: JsonDict | None = None,
    via: Sequence[str] = (),
) -> Event:
    check_room_not_blocked(room_id)
    if content is None:
        content = _with_reason(member_content(user, Membership.KNOCK), reason)
    else:
        content = _with_profile(_client_content(content, Membership.KNOCK), user)
    if not is_resident(room_id):
        servers = remote_servers(room_id, user.user_id, via)
        if servers:
            from federation import peers
            from federation.actions.remote_rooms import knock_remote_room

            _federation_enabled("knock on a room on another server")
            return knock_remote_room(user, room_id, servers, content, peers.remote())
    return _send_member(room_id, user.user_id, user.user_id, content)


def do_set_membership(requester: Requester, room_id: str, target: str, content: JsonDict) -> Event:
    """PUT /rooms/{roomId}/state/m.room.member/{userId}: the membership endpoints' actions
    (join, leave, knock for oneself; invite, kick, ban, unban of others) with their
    checks, keeping the content the client wrote.

    Raises:
        BadJson: no valid membership in the content.
        InvalidParam: the state key is not a user ID.
        Forbidden: the action's checks or the auth rules refuse; guests only join and
            leave themselves (M_GUEST_ACCESS_FORBIDDEN).
    """
    membership = content.get("membership")
    if not isinstance(membership, str):
        raise BadJson("m.room.member content needs a membership string")
    if membership not in _MEMBERSHIPS:
        raise BadJson(f"Unknown membership {membership!r}")
    try:
        parse_user_id(target)
    except InvalidIdentifier as exc:
        raise InvalidParam("The state key of m.room.member must be a user ID") from exc
    sender = requester.user_id
    if requester.is_guest and (target != sender or membership not in _GUEST_MEMBERSHIPS):
        raise Forbidden("Guests may only join and leave rooms", Codes.GUEST_ACCESS_FORBIDDEN)
    if target == sender:
        if membership == Membership.JOIN:
            return _join_with_content(requester.user, room_id, content)
        if membership == Membership.LEAVE:
            if not is_resident(room_id):
                left = do_leave(sender, room_id)
                if left is not None:
                    return left
            return _send_member(room_id, sender, sender, _client_content(content, membership))
        if membership == Membership.KNOCK:
            return do_knock(requester.user, room_id, content=content)
        raise Forbidden(f"You cannot {membership} yourself")
    if membership == Membership.INVITE:
        return do_invite(sender, room_id, target, content=content)
    if membership == Membership.BAN:
        return do_ban(sender, room_id, target, content=content)
    if membership == Membership.LEAVE:  # both actions check the membership again, locked
        banned = RoomMembership.objects.filter(
            room__room_id=room_id, user_id=target, membership=Membership.BAN
        ).exists()
        action = do_unban if banned else do_kick
        return action(sender, room_id, target, content=content)
    raise Forbidden(f"Only {target} can {membership} for themselves")


def _join_with_content(user: User, room_id: str, content: JsonDict) -> Event:
    check_room_not_blocked(room_id)
    if not is_resident(room_id):
        servers = remote_servers(room_id, user.user_id)
        if servers:
            content = _with_profile(_client_content(content, Membership.JOIN), user)
            return _join_remote(user, room_id, servers, content)
    with transaction.atomic():
        room = lock_room(room_id)
        current = current_membership(room, user.user_id)
        content = _with_profile(_client_content(content, Membership.JOIN), user)
        return _join_locked(room, user, content, current)


def do_send_profile_to_rooms(user: User) -> int:
    """Send the user's display name and avatar to every room they are joined to, as a new
    join event whose other content is kept, so that the other members see the change.

    A room that refuses the event (its auth rules) is skipped and logged: the profile
    itself has changed already. Returns the number of events sent.
    """
    refresh_users([user.user_id])  # the directory shows local users with their profile
    room_ids = RoomMembership.objects.filter(
        user_id=user.user_id, membership=Membership.JOIN
    ).values_list("room__room_id", flat=True)
    sent = 0
    for room_id in list(room_ids):
        try:
            with transaction.atomic():
                sent += _send_profile_to_room(lock_room(room_id), user)
        except MatrixError as exc:
            logger.warning("Profile of %s not sent to %s: %s", user.user_id, room_id, exc.msg)
    return sent


def _send_profile_to_room(room: Room, user: User) -> bool:
    if current_membership(room, user.user_id) != Membership.JOIN:
        return False
    key = (EventTypes.MEMBER, user.user_id)
    event_id = current_state_ids(room, [key]).get(key)
    previous = load_pdus([event_id]).get(event_id, {}) if event_id else {}
    old: JsonDict = previous.get("content", {})
    profile_keys = ("displayname", "avatar_url", AUTHORISER)
    content = {k: v for k, v in old.items() if k not in profile_keys}
    content.update(member_content(user, Membership.JOIN))
    if content == old:
        return False
    send_in_locked_room(room, user.user_id, EventTypes.MEMBER, content, user.user_id)
    return True


def do_forget(user_id: str, room_id: str) -> None:
    """Forget a room the user has left (it disappears from their sync and history).

    Raises:
        MatrixError: 400 M_UNKNOWN while the user is still in the room.
    """
    membership = RoomMembership.objects.filter(room__room_id=room_id, user_id=user_id).first()
    if membership is None:
        return
    if membership.membership not in (Membership.LEAVE, Membership.BAN):
        raise MatrixError(400, Codes.UNKNOWN, "The user is still in the room; leave it first")
    membership.forgotten = True
    membership.save(update_fields=["forgotten"])
