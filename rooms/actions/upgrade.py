"""Room upgrades (spec "Room Upgrades", POST /rooms/{roomId}/upgrade): a new room of the
new version that names the old one as its predecessor, with the old room's state copied,
a tombstone in the old room pointing to the new one, the old room's power levels raised
so that only moderators speak there, and the local aliases moved.

Everything happens in one transaction, both rooms locked: an upgrade either happened
whole or not at all.
"""

from __future__ import annotations

import copy

from django.db import transaction

from accounts.models import User
from matrixhs.errors import Forbidden, JsonDict, NotFound
from matrixhs.protocol.events import CREATE_KEY, EventTypes, Membership
from matrixhs.protocol.power_levels import CREATOR_POWER_LEVEL, PowerLevels
from matrixhs.protocol.room_versions import RoomVersion, get_room_version
from rooms.actions.create import check_room_version
from rooms.actions.membership import is_local, member_content
from rooms.events import (
    create_room,
    current_state_ids,
    load_pdus,
    lock_room,
    send_in_locked_room,
)
from rooms.models import Room, RoomAlias, RoomMembership

#: State the new room starts with, as the old room has it (besides power levels).
COPIED_STATE = (
    EventTypes.JOIN_RULES,
    EventTypes.HISTORY_VISIBILITY,
    EventTypes.GUEST_ACCESS,
    EventTypes.NAME,
    EventTypes.TOPIC,
    EventTypes.AVATAR,
    EventTypes.ENCRYPTION,
    "m.room.server_acl",
    "m.room.pinned_events",
    "m.space.parent",
    "m.space.child",
)
StateIds = dict[tuple[str, str], str]

#: The level the old room asks of speakers and inviters once upgraded (spec: at least 50).
RESTRICTED_LEVEL = 50


def _content(pdus: dict[str, JsonDict], state: StateIds, key: tuple[str, str]) -> JsonDict | None:
    event = pdus.get(state.get(key, ""))
    content = event.get("content") if event is not None else None
    return copy.deepcopy(content) if isinstance(content, dict) and content else None


def do_upgrade_room(user: User, room_id: str, new_version: str) -> str:
    """Upgrade the room; returns the new room's ID.

    Raises:
        MatrixError: 400 M_UNSUPPORTED_ROOM_VERSION.
        Forbidden: the user is not joined, or may not send the tombstone.
        NotFound: no such room.
    """
    new_rv = check_room_version(new_version)
    with transaction.atomic():
        try:
            old = lock_room(room_id)
        except NotFound as exc:
            raise Forbidden("You are not in the room") from exc
        old_rv = get_room_version(old.room_version)
        state = current_state_ids(old)
        pdus = load_pdus(state.values())
        levels = PowerLevels.from_state(
            pdus.get(state.get((EventTypes.POWER_LEVELS, ""), "")),
            pdus.get(state.get(CREATE_KEY, "")),
            old_rv,
        )
        membership = RoomMembership.objects.filter(room=old, user_id=user.user_id).first()
        if membership is None or membership.membership != Membership.JOIN:
            raise Forbidden("You are not in the room")
        if levels.user_level(user.user_id) < levels.send_level(EventTypes.TOMBSTONE, True):
            raise Forbidden("You may not upgrade this room (the tombstone needs more power)")
        new = _new_room(user, old, new_rv, state, pdus, levels)
        send_in_locked_room(
            old,
            user.user_id,
            EventTypes.TOMBSTONE,
            {"body": "This room has been replaced", "replacement_room": new.room_id},
            "",
        )
        _restrict_old_room(old, user, state, pdus, levels)
        _move_aliases(old, new, user, state, pdus)
        _carry_members(old, new, user, state)
    return new.room_id


def _new_room(
    user: User,
    old: Room,
    rv: RoomVersion,
    state: StateIds,
    pdus: dict[str, JsonDict],
    levels: PowerLevels,
) -> Room:
    creation: JsonDict = {"room_version": rv.identifier, "predecessor": {"room_id": old.room_id}}
    old_create = _content(pdus, state, CREATE_KEY) or {}
    for key in ("type", "m.federate"):
        if key in old_create:
            creation[key] = old_create[key]
    if not rv.implicit_room_creator:
        creation["creator"] = user.user_id
    new = create_room(user.user_id, creation, rv, is_public=old.is_public)
    sender = user.user_id
    send_in_locked_room(new, sender, EventTypes.MEMBER, member_content(user, "join"), sender)
    power_levels = _content(pdus, state, (EventTypes.POWER_LEVELS, "")) or {}
    users = {
        u: level
        for u, level in (power_levels.get("users") or {}).items()
        if not (rv.privileged_creators and u == sender)  # creators are not listed
    }
    if not rv.privileged_creators:
        # The upgrader keeps their level (v12 creators of the old room: the highest).
        old_level = levels.user_level(sender)
        users[sender] = (
            _highest(power_levels) if old_level == CREATOR_POWER_LEVEL else int(old_level)
        )
        # While the state is copied they need every level; then the old ones apply.
        setup = {**power_levels, "users": {**users, sender: _highest(power_levels)}}
        send_in_locked_room(new, sender, EventTypes.POWER_LEVELS, setup, "")
    for kind, state_key in sorted(k for k in state if k[0] in COPIED_STATE):
        content = _content(pdus, state, (kind, state_key))
        if content is not None:
            send_in_locked_room(new, sender, kind, content, state_key)
    send_in_locked_room(new, sender, EventTypes.POWER_LEVELS, {**power_levels, "users": users}, "")
    return new


def _highest(power_levels: JsonDict) -> int:
    """A level at least as high as every level the content names (and 100)."""
    values = [100]
    for value in (
        *power_levels.values(),
        *(power_levels.get("users") or {}).values(),
        *(power_levels.get("events") or {}).values(),
    ):
        if isinstance(value, int) and not isinstance(value, bool):
            values.append(value)
    return max(values)


def _restrict_old_room(
    old: Room, user: User, state: StateIds, pdus: dict[str, JsonDict], levels: PowerLevels
) -> None:
    """Only moderators speak or invite in the old room from now on (if the upgrader may
    change its power levels)."""
    content = _content(pdus, state, (EventTypes.POWER_LEVELS, "")) or {}
    needed = max(RESTRICTED_LEVEL, levels.users_default + 1)
    changed = {**content}
    for name in ("events_default", "invite"):
        if not isinstance(changed.get(name), int) or changed[name] < needed:
            changed[name] = needed
    if changed == content:
        return
    if levels.user_level(user.user_id) < levels.send_level(EventTypes.POWER_LEVELS, True):
        return
    try:
        send_in_locked_room(old, user.user_id, EventTypes.POWER_LEVELS, changed, "")
    except Forbidden:
        pass  # the auth rules refuse some change (a level above the upgrader's): leave it


def _move_aliases(
    old: Room, new: Room, user: User, state: StateIds, pdus: dict[str, JsonDict]
) -> None:
    """Local aliases point to the new room; the canonical alias moves with them, and the
    directory lists the new room instead of the old one."""
    RoomAlias.objects.filter(room=old).update(room=new)
    canonical = _content(pdus, state, (EventTypes.CANONICAL_ALIAS, ""))
    if canonical:
        send_in_locked_room(new, user.user_id, EventTypes.CANONICAL_ALIAS, canonical, "")
        try:
            send_in_locked_room(old, user.user_id, EventTypes.CANONICAL_ALIAS, {}, "")
        except Forbidden:
            pass
    if old.is_public:
        Room.objects.filter(pk=old.pk).update(is_public=False)


def _carry_members(old: Room, new: Room, user: User, state: StateIds) -> None:
    """Bans carry over; in a room that is not public, our users who were in the old room
    are invited to the new one (they could not join it otherwise)."""
    rows = RoomMembership.objects.filter(room=old).values_list("user_id", "membership")
    join_rules = load_pdus([state.get((EventTypes.JOIN_RULES, ""), "")])
    rule = next(iter(join_rules.values()), {}).get("content", {}).get("join_rule")
    for member, membership in rows:
        if member == user.user_id:
            continue
        if membership == Membership.BAN:
            send_in_locked_room(new, user.user_id, EventTypes.MEMBER, {"membership": "ban"}, member)
        elif membership == Membership.JOIN and rule != "public" and is_local(member):
            send_in_locked_room(
                new, user.user_id, EventTypes.MEMBER, {"membership": "invite"}, member
            )
