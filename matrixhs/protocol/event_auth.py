"""The authorisation rules for events, room versions 1 to 12 (spec room versions,
"Authorisation rules"; server-server API "Auth events selection").

Rule numbers in comments are those of room version 11 unless a version is named. Room
version 12 inserts a rule 2 (room ID derived from the create event), so its rules 3 to 11
are v11's rules 2 to 10; v1-v5 have the ``m.room.aliases`` rule 4, so their later rules are
shifted by one, and v1-v2 end with the ``m.room.redaction`` rule 11.

Two entry points, as the spec's "checks performed on receipt of a PDU" need:

* ``check_auth_events_list``: the checks on the event's own ``auth_events`` list (rule 2),
  which returns the state map ``check_auth`` then takes;
* ``check_auth``: every other rule, against any state map (the event's auth events, the
  state before it, or the current state). The one rule that needs a key store (4.2, the
  authorising server's signature on a restricted join) verifies the signature with the
  ``ServerKeys`` it is given.

``recheck_auth`` runs the same rules for an event accepted before, whose signatures were
verified then (state resolution's iterative auth checks): rule 4.2 only checks that the
signature is there, so that the outcome never depends on which keys a server holds now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matrixhs.protocol.events import (
    CREATE_KEY,
    JOIN_RULES_KEY,
    POWER_LEVELS_KEY,
    EventTypes,
    JoinRules,
    Membership,
    StateKey,
    content_of,
    membership_of,
    prev_event_ids,
    room_id_for_create_event_id,
    sender_domain,
    state_key_of,
    state_key_tuple,
)
from matrixhs.protocol.hashing import compute_event_id
from matrixhs.protocol.ids import InvalidIdentifier, parse_user_id, server_name_of
from matrixhs.protocol.power_levels import PowerLevel, PowerLevels, parse_power_level
from matrixhs.protocol.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from matrixhs.protocol.signing import (
    InvalidSignature,
    ServerKeys,
    signed_with_any_key,
    verify_event_signed_by,
)

__all__ = [
    "AuthEvents",
    "EventRejected",
    "auth_types_for_event",
    "check_auth",
    "check_auth_events_list",
    "recheck_auth",
]

AuthEvents = Mapping[StateKey, Mapping[str, Any]]


class EventRejected(Exception):
    """The event fails the authorisation rules.

    Attributes:
        reason: which rule failed, for logs and error messages.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def auth_types_for_event(event: Mapping[str, Any], rv: RoomVersion) -> set[StateKey]:
    """The state keys whose current events an event must cite as ``auth_events``
    (server-server API "Auth events selection").
    """
    if event.get("type") == EventTypes.CREATE:
        return set()
    keys: set[StateKey] = {POWER_LEVELS_KEY}
    if not rv.room_id_from_create_event:
        keys.add(CREATE_KEY)  # v12: the room ID implies the create event instead.
    sender = event.get("sender")
    if isinstance(sender, str):
        keys.add((EventTypes.MEMBER, sender))
    if event.get("type") != EventTypes.MEMBER:
        return keys
    target = state_key_of(event)
    if target is not None:
        keys.add((EventTypes.MEMBER, target))
    membership = membership_of(event)
    if membership in (Membership.JOIN, Membership.INVITE, Membership.KNOCK):
        keys.add(JOIN_RULES_KEY)
    content = content_of(event)
    if membership == Membership.INVITE and "third_party_invite" in content:
        token = _third_party_invite_token(content)
        if token is not None:
            keys.add((EventTypes.THIRD_PARTY_INVITE, token))
    authoriser = content.get("join_authorised_via_users_server")
    if membership == Membership.JOIN and rv.restricted_join_rule and isinstance(authoriser, str):
        keys.add((EventTypes.MEMBER, authoriser))
    return keys


def _third_party_invite_token(content: Mapping[str, Any]) -> str | None:
    third_party_invite = content.get("third_party_invite")
    signed = third_party_invite.get("signed") if isinstance(third_party_invite, dict) else None
    token = signed.get("token") if isinstance(signed, dict) else None
    return token if isinstance(token, str) else None


def check_auth_events_list(
    event: Mapping[str, Any], auth_events: Sequence[Mapping[str, Any]], rv: RoomVersion
) -> dict[StateKey, Mapping[str, Any]]:
    """Rule 2 (3 in v12): checks on the events the event lists in ``auth_events``.

    The caller fetches the listed events and leaves out none; rule 2.3 (an auth event that
    was itself rejected) is the caller's to apply, since rejection is stored state.

    Returns:
        The auth events keyed by ``(type, state_key)``, ready for ``check_auth``. In v12
        the caller adds the create event (which ``auth_events`` never lists) under
        ``("m.room.create", "")``.

    Raises:
        EventRejected: a rule failed.
    """
    if event.get("type") == EventTypes.CREATE:
        return {}
    allowed = auth_types_for_event(event, rv)
    by_key: dict[StateKey, Mapping[str, Any]] = {}
    for auth_event in auth_events:
        key = state_key_tuple(auth_event)
        if key is None:
            raise EventRejected("an auth event is not a state event")
        if key in by_key:
            raise EventRejected(f"duplicate auth events for {key}")  # 2.1
        if key not in allowed:
            raise EventRejected(f"auth event {key} is not one the event may cite")  # 2.2
        if auth_event.get("room_id") != event.get("room_id"):
            raise EventRejected("an auth event is in another room")  # 2.5
        by_key[key] = auth_event
    if not rv.room_id_from_create_event and CREATE_KEY not in by_key:
        raise EventRejected("no m.room.create event among the auth events")  # 2.4
    return by_key


def check_auth(
    event: Mapping[str, Any], auth_events: AuthEvents, rv: RoomVersion, keys: ServerKeys
) -> None:
    """Check an event against the authorisation rules, given a state map.

    Args:
        event: the PDU.
        auth_events: the state to check against, keyed by ``(type, state_key)``; only
            the keys of ``auth_types_for_event`` are read. Must hold the create event (in
            v12 too, where it comes from the room ID rather than ``auth_events``).
        rv: the room version.
        keys: servers' public keys, for the signature rule 4.2 demands of the server of
            ``join_authorised_via_users_server``; a key it does not know fails the rule.

    Raises:
        EventRejected: the event is not allowed.
    """
    _check_auth(event, auth_events, rv, keys)


def recheck_auth(event: Mapping[str, Any], auth_events: AuthEvents, rv: RoomVersion) -> None:
    """``check_auth`` for an event whose signatures were verified when it was received
    (state resolution): rule 4.2 checks that the authorising server's signature is
    present, not that it verifies, so the outcome does not depend on the keys known now.

    Raises:
        EventRejected: the event is not allowed.
    """
    _check_auth(event, auth_events, rv, None)


def _check_auth(
    event: Mapping[str, Any], auth_events: AuthEvents, rv: RoomVersion, keys: ServerKeys | None
) -> None:
    if event.get("type") == EventTypes.CREATE:
        _check_create(event, rv)  # rule 1
        return
    create = auth_events.get(CREATE_KEY)
    if create is None:
        raise EventRejected("no m.room.create event in the room state")
    if rv.room_id_from_create_event:
        _check_room_id_matches_create(event, create, rv)  # v12 rule 2
    sender = event.get("sender")
    if not isinstance(sender, str):
        raise EventRejected("the event has no sender")
    # Rule 3: m.federate
    federates = content_of(create).get("m.federate", True) is not False
    if not federates and sender_domain(event) != sender_domain(create):
        raise EventRejected("the room does not federate with the sender's server")
    if rv.special_case_aliases_auth and event.get("type") == EventTypes.ALIASES:
        _check_aliases(event)  # v1-v5 rule 4
        return
    levels = PowerLevels.from_state(auth_events.get(POWER_LEVELS_KEY), create, rv)
    if event.get("type") == EventTypes.MEMBER:
        _check_membership(event, auth_events, create, levels, rv, keys)  # rule 4
        return
    _check_sender_and_levels(event, sender, auth_events, levels, rv)  # rules 5 to 9 (10)


def _check_sender_and_levels(
    event: Mapping[str, Any],
    sender: str,
    auth_events: AuthEvents,
    levels: PowerLevels,
    rv: RoomVersion,
) -> None:
    # Rule 5
    if _membership(auth_events, sender) != Membership.JOIN:
        raise EventRejected("the sender is not in the room")
    sender_level = levels.user_level(sender)
    event_type = str(event.get("type"))
    # Rule 6
    if event_type == EventTypes.THIRD_PARTY_INVITE:
        if sender_level < levels.named_level("invite"):
            raise EventRejected("the sender may not invite")
        return
    # Rule 7
    state_key = state_key_of(event)
    if levels.send_level(event_type, state_key is not None) > sender_level:
        raise EventRejected(f"the sender's power level is too low to send {event_type}")
    # Rule 8
    if state_key is not None and state_key.startswith("@") and state_key != sender:
        raise EventRejected("a state key starting with @ must be the sender's user ID")
    # Rule 9
    if event_type == EventTypes.POWER_LEVELS:
        _check_power_levels(event, auth_events.get(POWER_LEVELS_KEY), sender_level, levels, rv)
    # v1-v2 rule 11
    if rv.redaction_auth_rule and event_type == EventTypes.REDACTION:
        _check_redaction_v1(event, sender_level, levels)


def _check_create(event: Mapping[str, Any], rv: RoomVersion) -> None:
    # 1.1
    if event.get("prev_events"):
        raise EventRejected("a create event has no prev_events")
    if rv.room_id_from_create_event:
        # v12 1.2: the room ID is derived from this event, so it carries none.
        if "room_id" in event:
            raise EventRejected("a create event has no room_id in this room version")
    else:
        # 1.2
        room_id = event.get("room_id")
        if not isinstance(room_id, str) or server_name_of(room_id) != sender_domain(event):
            raise EventRejected("the room ID's domain is not the sender's")
    content = content_of(event)
    # 1.3
    if "room_version" in content:
        room_version = content["room_version"]
        if not isinstance(room_version, str) or room_version not in KNOWN_ROOM_VERSIONS:
            raise EventRejected("unknown room_version in the create event")
    # v1-v10 1.4
    if not rv.implicit_room_creator and "creator" not in content:
        raise EventRejected("the create event has no creator")
    # v12 1.4
    if rv.privileged_creators and "additional_creators" in content:
        additional = content["additional_creators"]
        if not isinstance(additional, list) or not all(_is_user_id(u) for u in additional):
            raise EventRejected("additional_creators must be a list of user IDs")


def _is_user_id(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_user_id(value)
    except InvalidIdentifier:
        return False
    return True


def _check_room_id_matches_create(
    event: Mapping[str, Any], create: Mapping[str, Any], rv: RoomVersion
) -> None:
    # v12 rule 2: the room ID is the create event's ID with the `!` sigil.
    expected = room_id_for_create_event_id(compute_event_id(create, rv))
    if event.get("room_id") != expected:
        raise EventRejected("the room ID is not that of the room's create event")


def _check_aliases(event: Mapping[str, Any]) -> None:
    # v1-v5 rule 4
    state_key = state_key_of(event)
    if state_key is None:
        raise EventRejected("m.room.aliases needs a state_key")
    if state_key != sender_domain(event):
        raise EventRejected("m.room.aliases state_key must be the sender's server name")


def _check_redaction_v1(
    event: Mapping[str, Any], sender_level: PowerLevel, levels: PowerLevels
) -> None:
    # v1-v2 rule 11
    if sender_level >= levels.named_level("redact"):
        return
    redacts, event_id = event.get("redacts"), event.get("event_id")
    if (
        isinstance(redacts, str)
        and isinstance(event_id, str)
        and server_name_of(redacts) == server_name_of(event_id)
    ):
        return
    raise EventRejected("the sender may not redact this event")


# --- membership (rule 4; 5 in v12, 5 in v1-v5) ---------------------------------------------


def _membership(auth_events: AuthEvents, user_id: str) -> str:
    member_event = auth_events.get((EventTypes.MEMBER, user_id))
    membership = membership_of(member_event) if member_event is not None else None
    return membership or Membership.LEAVE


def _join_rule(auth_events: AuthEvents) -> str:
    # No join rules event (or no join_rule in it) acts as `invite`, as Synapse does.
    join_rules = auth_events.get(JOIN_RULES_KEY)
    rule = content_of(join_rules).get("join_rule") if join_rules is not None else None
    return rule if isinstance(rule, str) else JoinRules.INVITE


def _check_membership(
    event: Mapping[str, Any],
    auth_events: AuthEvents,
    create: Mapping[str, Any],
    levels: PowerLevels,
    rv: RoomVersion,
    keys: ServerKeys | None,
) -> None:
    content = content_of(event)
    target = state_key_of(event)
    membership = membership_of(event)
    # 4.1
    if target is None or membership is None:
        raise EventRejected("a member event needs a state_key and a membership")
    # 4.2 (v8+)
    if rv.restricted_join_rule and "join_authorised_via_users_server" in content:
        _check_authorising_signature(event, content["join_authorised_via_users_server"], rv, keys)
    if membership == Membership.JOIN:
        _check_join(event, target, auth_events, create, levels, rv)  # 4.3
    elif membership == Membership.INVITE:
        _check_invite(event, target, auth_events, levels)  # 4.4
    elif membership == Membership.LEAVE:
        _check_leave(event, target, auth_events, levels, rv)  # 4.5
    elif membership == Membership.BAN:
        _check_ban(event, target, auth_events, levels)  # 4.6
    elif membership == Membership.KNOCK and rv.knock_join_rule:
        _check_knock(event, target, auth_events, rv)  # 4.7
    else:
        raise EventRejected(f"unknown membership {membership!r}")  # 4.8


def _check_authorising_signature(
    event: Mapping[str, Any], authoriser: object, rv: RoomVersion, keys: ServerKeys | None
) -> None:
    # 4.2: "If the event is not validly signed by the homeserver of the user ID denoted
    # by the key, reject." Without keys (a re-check), the signature was verified before.
    if not isinstance(authoriser, str) or not _is_user_id(authoriser):
        raise EventRejected("join_authorised_via_users_server is not a user ID")
    server = server_name_of(authoriser)
    if keys is None:
        signatures = event.get("signatures")
        if not isinstance(signatures, dict) or not signatures.get(server):
            raise EventRejected("the authorising server has not signed the join")
        return
    try:
        verify_event_signed_by(event, server, keys, rv)
    except InvalidSignature as exc:
        raise EventRejected(
            f"the authorising server has not validly signed the join: {exc}"
        ) from exc


def _is_creator_first_join(
    event: Mapping[str, Any], target: str, create: Mapping[str, Any], rv: RoomVersion
) -> bool:
    # 4.3.1: the only previous event is the create event, and the target is its creator
    # (v11+: the create event's sender; before: content.creator).
    prev_ids = prev_event_ids(event)
    if len(prev_ids) != 1:
        return False
    if rv.implicit_room_creator:
        creator = create.get("sender")
    else:
        creator = content_of(create).get("creator")
    return target == creator and prev_ids[0] == compute_event_id(create, rv)


def _check_join(
    event: Mapping[str, Any],
    target: str,
    auth_events: AuthEvents,
    create: Mapping[str, Any],
    levels: PowerLevels,
    rv: RoomVersion,
) -> None:
    if _is_creator_first_join(event, target, create, rv):
        return  # 4.3.1
    # 4.3.2
    if event.get("sender") != target:
        raise EventRejected("a user can only join as themselves")
    current = _membership(auth_events, target)
    # 4.3.3
    if current == Membership.BAN:
        raise EventRejected("the user is banned")
    join_rule = _join_rule(auth_events)
    # 4.3.4
    if join_rule == JoinRules.INVITE or (rv.knock_join_rule and join_rule == JoinRules.KNOCK):
        if current in (Membership.INVITE, Membership.JOIN):
            return
        raise EventRejected("the room is invite-only")
    # 4.3.5
    if (rv.restricted_join_rule and join_rule == JoinRules.RESTRICTED) or (
        rv.knock_restricted_join_rule and join_rule == JoinRules.KNOCK_RESTRICTED
    ):
        _check_restricted_join(event, current, auth_events, levels)
        return
    # 4.3.6, 4.3.7
    if join_rule != JoinRules.PUBLIC:
        raise EventRejected(f"cannot join a room with join rule {join_rule!r}")


def _check_restricted_join(
    event: Mapping[str, Any], current: str, auth_events: AuthEvents, levels: PowerLevels
) -> None:
    # 4.3.5.1
    if current in (Membership.JOIN, Membership.INVITE):
        return
    # 4.3.5.2: the authorising user must be joined and able to invite.
    authoriser = content_of(event).get("join_authorised_via_users_server")
    if not isinstance(authoriser, str):
        raise EventRejected("a restricted join needs join_authorised_via_users_server")
    if _membership(auth_events, authoriser) != Membership.JOIN:
        raise EventRejected("the authorising user is not in the room")
    if levels.user_level(authoriser) < levels.named_level("invite"):
        raise EventRejected("the authorising user may not invite")


def _check_invite(
    event: Mapping[str, Any], target: str, auth_events: AuthEvents, levels: PowerLevels
) -> None:
    sender = str(event.get("sender"))
    content = content_of(event)
    # 4.4.1
    if "third_party_invite" in content:
        if _membership(auth_events, target) == Membership.BAN:
            raise EventRejected("the invited user is banned")  # 4.4.1.1
        _check_third_party_invite(event, target, content["third_party_invite"], auth_events)
        return
    # 4.4.2
    if _membership(auth_events, sender) != Membership.JOIN:
        raise EventRejected("the inviter is not in the room")
    # 4.4.3
    if _membership(auth_events, target) in (Membership.JOIN, Membership.BAN):
        raise EventRejected("the invited user is already joined or banned")
    # 4.4.4, 4.4.5
    if levels.user_level(sender) < levels.named_level("invite"):
        raise EventRejected("the sender may not invite")


def _check_third_party_invite(
    event: Mapping[str, Any], target: str, third_party_invite: object, auth_events: AuthEvents
) -> None:
    signed = third_party_invite.get("signed") if isinstance(third_party_invite, dict) else None
    # 4.4.1.2, 4.4.1.3
    if not isinstance(signed, dict) or "mxid" not in signed or "token" not in signed:
        raise EventRejected("third_party_invite needs signed.mxid and signed.token")
    # 4.4.1.4
    if signed["mxid"] != target:
        raise EventRejected("third_party_invite is for another user")
    token = signed["token"]
    invite_event = (
        auth_events.get((EventTypes.THIRD_PARTY_INVITE, token)) if isinstance(token, str) else None
    )
    # 4.4.1.5
    if invite_event is None:
        raise EventRejected("no m.room.third_party_invite for this token")
    # 4.4.1.6
    if invite_event.get("sender") != event.get("sender"):
        raise EventRejected("the sender did not make the third-party invite")
    # 4.4.1.7, 4.4.1.8
    if not signed_with_any_key(signed, _third_party_public_keys(invite_event)):
        raise EventRejected("third_party_invite is not signed by the identity server")


def _third_party_public_keys(invite_event: Mapping[str, Any]) -> list[str]:
    content = content_of(invite_event)
    keys = []
    if isinstance(content.get("public_key"), str):
        keys.append(content["public_key"])
    public_keys = content.get("public_keys")
    if isinstance(public_keys, list):
        for entry in public_keys:
            if isinstance(entry, dict) and isinstance(entry.get("public_key"), str):
                keys.append(entry["public_key"])
    return keys


def _check_leave(
    event: Mapping[str, Any],
    target: str,
    auth_events: AuthEvents,
    levels: PowerLevels,
    rv: RoomVersion,
) -> None:
    sender = str(event.get("sender"))
    # 4.5.1: leaving, or rejecting an invite (v7+: or withdrawing a knock).
    if sender == target:
        may_leave = {Membership.INVITE, Membership.JOIN}
        if rv.knock_join_rule:
            may_leave.add(Membership.KNOCK)
        if _membership(auth_events, target) not in may_leave:
            raise EventRejected("the user is not in the room")
        return
    # 4.5.2
    if _membership(auth_events, sender) != Membership.JOIN:
        raise EventRejected("the sender is not in the room")
    sender_level = levels.user_level(sender)
    # 4.5.3: unbanning needs the ban level.
    is_banned = _membership(auth_events, target) == Membership.BAN
    if is_banned and sender_level < levels.named_level("ban"):
        raise EventRejected("the sender may not unban")
    # 4.5.4, 4.5.5
    if sender_level < levels.named_level("kick") or levels.user_level(target) >= sender_level:
        raise EventRejected("the sender may not kick this user")


def _check_ban(
    event: Mapping[str, Any], target: str, auth_events: AuthEvents, levels: PowerLevels
) -> None:
    sender = str(event.get("sender"))
    # 4.6.1
    if _membership(auth_events, sender) != Membership.JOIN:
        raise EventRejected("the sender is not in the room")
    sender_level = levels.user_level(sender)
    # 4.6.2, 4.6.3
    if sender_level < levels.named_level("ban") or levels.user_level(target) >= sender_level:
        raise EventRejected("the sender may not ban this user")


def _check_knock(
    event: Mapping[str, Any], target: str, auth_events: AuthEvents, rv: RoomVersion
) -> None:
    # 4.7.1 (v10+: knock_restricted too)
    knockable = {JoinRules.KNOCK}
    if rv.knock_restricted_join_rule:
        knockable.add(JoinRules.KNOCK_RESTRICTED)
    if _join_rule(auth_events) not in knockable:
        raise EventRejected("the room does not allow knocking")
    # 4.7.2
    if event.get("sender") != target:
        raise EventRejected("a user can only knock as themselves")
    # 4.7.3, 4.7.4
    if _membership(auth_events, target) in (Membership.BAN, Membership.INVITE, Membership.JOIN):
        raise EventRejected("the user is banned, invited or already joined")


# --- power levels (rule 9; 10 in v1-v5 and v12) ------------------------------------------

_LEVEL_KEYS = (
    "users_default",
    "events_default",
    "state_default",
    "ban",
    "redact",
    "kick",
    "invite",
)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_power_levels_shape(content: Mapping[str, Any], rv: RoomVersion) -> None:
    if rv.integer_only_power_levels:
        # v10+ 9.1
        for name in _LEVEL_KEYS:
            if name in content and not _is_int(content[name]):
                raise EventRejected(f"power level {name!r} is not an integer")
        # v10+ 9.2
        for field in ("events", "notifications"):
            if field in content:
                levels = content[field]
                if not isinstance(levels, dict) or not all(map(_is_int, levels.values())):
                    raise EventRejected(f"{field!r} must map to integers")
    # 9.3 (v1-v9 rule 10.1, where integer strings are allowed)
    users = content.get("users", {})
    if not isinstance(users, dict):
        raise EventRejected("'users' must be an object")
    for user_id, level in users.items():
        if not _is_user_id(user_id) or parse_power_level(level, rv) is None:
            raise EventRejected(f"invalid 'users' entry for {user_id!r}")


def _level_change(
    old: Mapping[str, Any], new: Mapping[str, Any], key: str, rv: RoomVersion
) -> tuple[int | None, int | None]:
    # (old, new) values of one level; None when absent. A new value that cannot be read
    # is rejected; an unreadable old one counts as absent.
    old_level = parse_power_level(old[key], rv) if key in old else None
    new_level = None
    if key in new:
        new_level = parse_power_level(new[key], rv)
        if new_level is None:
            raise EventRejected(f"power level {key!r} is not an integer")
    return old_level, new_level


def _as_dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _check_power_levels(
    event: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    sender_level: PowerLevel,
    levels: PowerLevels,
    rv: RoomVersion,
) -> None:
    new = content_of(event)
    _check_power_levels_shape(new, rv)
    # v12 10.4: creators cannot be given a power level.
    if rv.privileged_creators and levels.creators & _as_dict(new.get("users")).keys():
        raise EventRejected("room creators cannot be listed in 'users'")
    # 9.4
    if current is None:
        return
    old = content_of(current)
    # 9.5: each alteration must be within the sender's power, before and after.
    for name in _LEVEL_KEYS:
        old_level, new_level = _level_change(old, new, name, rv)
        if old_level != new_level and _exceeds(sender_level, old_level, new_level):
            raise EventRejected(f"the sender may not change {name!r}")
    # 9.6, 9.7 (v1-v5: `events` only)
    fields = ("events", "notifications") if rv.limit_notifications_power_levels else ("events",)
    for field in fields:
        old_map, new_map = _as_dict(old.get(field)), _as_dict(new.get(field))
        for key in old_map.keys() | new_map.keys():
            old_level, new_level = _level_change(old_map, new_map, key, rv)
            if old_level != new_level and _exceeds(sender_level, old_level, new_level):
                raise EventRejected(f"the sender may not change {field}.{key}")
    _check_users_change(event, old, new, sender_level, rv)


def _exceeds(sender_level: PowerLevel, old: int | None, new: int | None) -> bool:
    return (old is not None and old > sender_level) or (new is not None and new > sender_level)


def _check_users_change(
    event: Mapping[str, Any],
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    sender_level: PowerLevel,
    rv: RoomVersion,
) -> None:
    sender = event.get("sender")
    old_users, new_users = _as_dict(old.get("users")), _as_dict(new.get("users"))
    for user_id in old_users.keys() | new_users.keys():
        old_level, new_level = _level_change(old_users, new_users, user_id, rv)
        if old_level == new_level:
            continue
        # 9.8: others at or above the sender's level cannot be changed or removed.
        if user_id != sender and old_level is not None and old_level >= sender_level:
            raise EventRejected(f"the sender may not change the level of {user_id}")
        # 9.9: nobody can be raised above the sender.
        if new_level is not None and new_level > sender_level:
            raise EventRejected(f"the sender may not raise {user_id} above themselves")
