"""POST /createRoom: the spec's ordered list of events, in one transaction."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import User
from matrixhs.errors import BadJson, Codes, Forbidden, InvalidParam, JsonDict, MatrixError
from matrixhs.protocol.events import EventTypes
from matrixhs.protocol.ids import InvalidIdentifier, parse_user_id
from matrixhs.protocol.room_versions import (
    IMPLEMENTED_ROOM_VERSIONS,
    RoomVersion,
)
from rooms.actions.aliases import check_new_alias, do_create_alias
from rooms.actions.membership import do_invite, is_local, member_content
from rooms.events import create_room, send_in_locked_room
from rooms.models import Room

PRESETS = {
    "private_chat": ("invite", "shared", "can_join"),
    "trusted_private_chat": ("invite", "shared", "can_join"),
    "public_chat": ("public", "shared", "forbidden"),
}


class InvalidRoomState(MatrixError):
    def __init__(self, msg: str) -> None:
        super().__init__(400, Codes.INVALID_ROOM_STATE, msg)


def check_room_version(identifier: str | None) -> RoomVersion:
    """Raises: MatrixError: 400 M_UNSUPPORTED_ROOM_VERSION."""
    rv = IMPLEMENTED_ROOM_VERSIONS.get(identifier or settings.MATRIXHS_DEFAULT_ROOM_VERSION)
    if rv is None:
        raise MatrixError(
            400, Codes.UNSUPPORTED_ROOM_VERSION, f"Unsupported room version {identifier}"
        )
    return rv


def default_power_levels(
    creator: str, invitees: list[str], preset: str, rv: RoomVersion
) -> JsonDict:
    users: dict[str, int] = {}
    if not rv.privileged_creators:  # v12: creators have infinite power and are not listed
        users[creator] = 100
        if preset == "trusted_private_chat":
            users.update({invitee: 100 for invitee in invitees})
    return {
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 150 if rv.privileged_creators else 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0 if preset != "public_chat" else 50,
        "notifications": {"room": 50},
    }


def do_create_room(creator: User, body: JsonDict) -> str:
    """Create a room as ``body`` (parsed by rooms.schemas.CreateRoomBody) asks.

    Raises:
        MatrixError: M_UNSUPPORTED_ROOM_VERSION, M_ROOM_IN_USE (alias taken),
            M_INVALID_ROOM_STATE (an implied event fails the auth rules), M_INVALID_PARAM.
    """
    rv = check_room_version(body.get("room_version"))
    preset = body.get("preset") or (
        "public_chat" if body.get("visibility") == "public" else "private_chat"
    )
    alias = None
    if body.get("room_alias_name") is not None:
        alias = check_new_alias(f"#{body['room_alias_name']}:{settings.MATRIXHS_SERVER_NAME}")
    invitees = list(dict.fromkeys(body.get("invite", [])))
    remote_invitees = [i for i in invitees if not is_local(i)]
    if remote_invitees and not settings.MATRIXHS_FEDERATION_ENABLED:
        raise Forbidden("Cannot invite users of other servers: federation is disabled")
    if body.get("invite_3pid"):
        raise InvalidParam("Third-party invites are not supported by this server")
    with transaction.atomic():
        room = _create(creator.user_id, body, rv, preset, invitees)
        try:
            _initial_events(room, rv, creator, body, preset, invitees, alias)
        except Forbidden as exc:
            raise InvalidRoomState(exc.msg) from exc
    # Users of other servers are invited once the room exists: their servers sign first.
    for invitee in remote_invitees:
        do_invite(creator.user_id, room.room_id, invitee, is_direct=body.get("is_direct", False))
    return room.room_id


def _is_user_id(value: Any) -> bool:
    try:
        return isinstance(value, str) and bool(parse_user_id(value))
    except InvalidIdentifier:
        return False


def _create(sender: str, body: JsonDict, rv: RoomVersion, preset: str, invitees: list[str]) -> Room:
    content: JsonDict = {**body.get("creation_content", {}), "room_version": rv.identifier}
    if rv.implicit_room_creator:
        content.pop("creator", None)
    else:
        content["creator"] = sender
    if rv.privileged_creators and "additional_creators" in content:
        extra = content["additional_creators"]
        if not isinstance(extra, list) or not all(_is_user_id(u) for u in extra):
            raise BadJson("additional_creators must be a list of user IDs")
    if rv.privileged_creators and preset == "trusted_private_chat":
        extra = content.get("additional_creators", [])
        content["additional_creators"] = list(dict.fromkeys([*extra, *invitees]))
    return create_room(sender, content, rv, is_public=body.get("visibility") == "public")


def _initial_events(
    room: Room,
    rv: RoomVersion,
    creator: User,
    body: JsonDict,
    preset: str,
    invitees: list[str],
    alias: str | None,
) -> None:
    sender = creator.user_id

    def send(event_type: str, content: JsonDict, state_key: str = "") -> None:
        send_in_locked_room(room, sender, event_type, content, state_key)

    send(EventTypes.MEMBER, member_content(creator, "join"), sender)
    power_levels = default_power_levels(sender, invitees, preset, rv)
    power_levels.update(body.get("power_level_content_override", {}))
    send(EventTypes.POWER_LEVELS, power_levels)
    if alias is not None:
        do_create_alias(alias, room, sender)
        send(EventTypes.CANONICAL_ALIAS, {"alias": alias})
    initial = {
        (e["type"], e.get("state_key", "")): e["content"] for e in body.get("initial_state", [])
    }
    join_rule, visibility, guest_access = PRESETS[preset]
    for key, content in (
        ((EventTypes.JOIN_RULES, ""), {"join_rule": join_rule}),
        ((EventTypes.HISTORY_VISIBILITY, ""), {"history_visibility": visibility}),
        ((EventTypes.GUEST_ACCESS, ""), {"guest_access": guest_access}),
    ):
        if key not in initial:
            send(key[0], content, key[1])
    for (event_type, state_key), content in initial.items():
        if (event_type == EventTypes.NAME and "name" in body) or (
            event_type == EventTypes.TOPIC and "topic" in body
        ):
            continue
        send(event_type, content, state_key)
    if "name" in body:
        send(EventTypes.NAME, {"name": body["name"]})
    if "topic" in body:
        send(EventTypes.TOPIC, topic_content(body["topic"]))
    for invitee in invitees:
        if is_local(invitee):
            content = invite_content(invitee, body.get("is_direct", False))
            send(EventTypes.MEMBER, content, invitee)


def topic_content(topic: str) -> JsonDict:
    """m.room.topic with both the plain ``topic`` and the v1.15 ``m.topic`` block."""
    return {"topic": topic, "m.topic": {"m.text": [{"body": topic, "mimetype": "text/plain"}]}}


def invite_content(invitee: str, is_direct: bool, reason: Any = None) -> JsonDict:
    target = User.objects.filter(user_id=invitee).first()
    content: JsonDict = member_content(target, "invite") if target else {"membership": "invite"}
    if is_direct:
        content["is_direct"] = True
    if isinstance(reason, str):
        content["reason"] = reason
    return content
