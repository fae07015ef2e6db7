"""Membership changes: join, invite, leave, kick, ban, unban, knock, forget.

Each builds the m.room.member content and sends it through rooms.events; the auth rules
decide. Rooms and users on other servers need federation, which this server does not
speak yet: those requests are refused clearly rather than half-done.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import User
from matrixhs.errors import Codes, Forbidden, JsonDict, MatrixError, NotFound
from matrixhs.protocol.events import EventTypes, JoinRules, Membership
from matrixhs.protocol.ids import server_name_of
from matrixhs.protocol.room_versions import get_room_version
from rooms.events import (
    current_power_levels,
    current_state_ids,
    load_pdus,
    lock_room,
    send_in_locked_room,
)
from rooms.models import Event, Room, RoomMembership


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


def remote_federation_unavailable(user_id: str, action: str) -> None:
    """Raises: Forbidden: ``user_id`` is on another server (no federation yet)."""
    if not is_local(user_id):
        raise Forbidden(f"Cannot {action} {user_id}: this server does not federate yet")


def current_membership(room: Room, user_id: str) -> str | None:
    return (
        RoomMembership.objects.filter(room=room, user_id=user_id)
        .values_list("membership", flat=True)
        .first()
    )


def _with_reason(content: JsonDict, reason: Any) -> JsonDict:
    if isinstance(reason, str):
        content["reason"] = reason
    return content


def _send_member(room_id: str, sender: str, target: str, content: JsonDict) -> Event:
    with transaction.atomic():
        room = lock_room(room_id)
        return send_in_locked_room(room, sender, EventTypes.MEMBER, content, target)


def do_join(user: User, room_id: str, reason: Any = None) -> Event | None:
    """Join a room on this server (None: already joined with the same profile).

    Raises:
        NotFound: the room is not on this server.
        Forbidden: the join rules refuse.
    """
    with transaction.atomic():
        room = lock_room(room_id)
        membership = RoomMembership.objects.filter(room=room, user_id=user.user_id).first()
        content = _with_reason(member_content(user, Membership.JOIN), reason)
        if (
            membership is not None
            and membership.membership == Membership.JOIN
            and (membership.displayname, membership.avatar_url)
            == (content.get("displayname"), content.get("avatar_url"))
        ):
            return None
        if membership is None or membership.membership not in (Membership.JOIN, Membership.INVITE):
            authoriser = _restricted_join_authoriser(room, user.user_id)
            if authoriser is not None:
                content["join_authorised_via_users_server"] = authoriser
        return send_in_locked_room(room, user.user_id, EventTypes.MEMBER, content, user.user_id)


def _restricted_join_authoriser(room: Room, user_id: str) -> str | None:
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
    inviter: str, room_id: str, invitee: str, reason: Any = None, is_direct: bool = False
) -> Event:
    """Raises: Forbidden: not allowed (auth rules), or a remote invitee (no federation yet)."""
    from rooms.actions.create import invite_content

    remote_federation_unavailable(invitee, "invite")
    if not User.objects.filter(user_id=invitee, is_active=True).exists():
        raise NotFound(f"Unknown user {invitee}")
    content = invite_content(invitee, is_direct, reason)
    return _send_member(room_id, inviter, invitee, content)


def do_leave(user_id: str, room_id: str, reason: Any = None) -> Event | None:
    """Leave (or reject an invite, or withdraw a knock). None: already left."""
    with transaction.atomic():
        room = lock_room(room_id)
        if current_membership(room, user_id) == Membership.LEAVE:
            return None
        content = _with_reason({"membership": Membership.LEAVE}, reason)
        return send_in_locked_room(room, user_id, EventTypes.MEMBER, content, user_id)


def do_kick(sender: str, room_id: str, target: str, reason: Any = None) -> Event:
    """Raises: Forbidden: the target is not in the room, or the auth rules refuse."""
    with transaction.atomic():
        room = lock_room(room_id)
        if current_membership(room, target) not in (
            Membership.JOIN,
            Membership.INVITE,
            Membership.KNOCK,
        ):
            raise Forbidden(f"{target} is not in the room")
        content = _with_reason({"membership": Membership.LEAVE}, reason)
        return send_in_locked_room(room, sender, EventTypes.MEMBER, content, target)


def do_ban(sender: str, room_id: str, target: str, reason: Any = None) -> Event:
    content = _with_reason({"membership": Membership.BAN}, reason)
    return _send_member(room_id, sender, target, content)


def do_unban(sender: str, room_id: str, target: str, reason: Any = None) -> Event:
    """Raises: Forbidden: the target is not banned, or the auth rules refuse."""
    with transaction.atomic():
        room = lock_room(room_id)
        if current_membership(room, target) != Membership.BAN:
            raise Forbidden(f"{target} is not banned")
        content = _with_reason({"membership": Membership.LEAVE}, reason)
        return send_in_locked_room(room, sender, EventTypes.MEMBER, content, target)


def do_knock(user: User, room_id: str, reason: Any = None) -> Event:
    content = _with_reason(member_content(user, Membership.KNOCK), reason)
    return _send_member(room_id, user.user_id, user.user_id, content)


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
