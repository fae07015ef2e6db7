"""Room versions 1 to 12 as data (spec "Room Versions").

Code elsewhere branches on the flags of a ``RoomVersion``, never on its identifier.
"""

from __future__ import annotations

import dataclasses
import enum


class EventFormat(enum.Enum):
    """How events carry and reference event IDs."""

    #: v1, v2: ``event_id`` is a field (``$opaque:server``); prev/auth events are
    #: ``[event_id, {"sha256": ...}]`` pairs.
    V1 = 1
    #: v3: the ID is ``$`` + the reference hash in standard unpadded base64.
    V3 = 3
    #: v4 and later: the ID is ``$`` + the reference hash in URL-safe unpadded base64.
    V4 = 4


class StateResolution(enum.Enum):
    """Which state resolution algorithm a room uses."""

    V1 = "v1"
    V2 = "v2"
    #: v2 with the room version 12 changes (empty initial state, conflicted subgraph).
    V2_1 = "v2.1"


@dataclasses.dataclass(frozen=True)
class RoomVersion:
    """The rules of one room version.

    Attributes:
        identifier: the room version string, e.g. ``"11"``.
        stable: the spec lists the version as stable (its disposition).
        event_format: event ID format (see ``EventFormat``).
        state_res: state resolution algorithm.
        enforce_key_validity: v5+: signing keys must be valid at ``origin_server_ts``.
        special_case_aliases_auth: v1-v5: ``m.room.aliases`` has its own auth rule and keeps
            ``aliases`` on redaction.
        strict_canonical_json: v6+: events must be valid canonical JSON (no floats, ints
            within +-(2**53-1)).
        limit_notifications_power_levels: v6+: power level changes check ``notifications``.
        redaction_auth_rule: v1-v2: ``m.room.redaction`` has its own auth rule (rule 11).
        knock_join_rule: v7+: the ``knock`` join rule and membership.
        restricted_join_rule: v8+: the ``restricted`` join rule and
            ``join_authorised_via_users_server``.
        restricted_join_rule_fix: v9+: redaction keeps ``join_authorised_via_users_server``.
        knock_restricted_join_rule: v10+: the ``knock_restricted`` join rule.
        integer_only_power_levels: v10+: power levels must be integers (no strings).
        updated_redaction_rules: v11+: the v11 redaction algorithm.
        implicit_room_creator: v11+: the creator is the create event's ``sender``;
            ``content.creator`` is no longer required.
        redacts_in_content: v11+: ``redacts`` lives in ``content`` of ``m.room.redaction``.
        room_id_from_create_event: v12+: the room ID is derived from the create event's ID,
            the create event has no ``room_id`` and is never listed in ``auth_events``.
        privileged_creators: v12+: the creators (create ``sender`` plus
            ``additional_creators``) have infinite power level.
    """

    identifier: str
    stable: bool
    event_format: EventFormat
    state_res: StateResolution
    enforce_key_validity: bool
    special_case_aliases_auth: bool
    strict_canonical_json: bool
    limit_notifications_power_levels: bool
    redaction_auth_rule: bool
    knock_join_rule: bool
    restricted_join_rule: bool
    restricted_join_rule_fix: bool
    knock_restricted_join_rule: bool
    integer_only_power_levels: bool
    updated_redaction_rules: bool
    implicit_room_creator: bool
    redacts_in_content: bool
    room_id_from_create_event: bool
    privileged_creators: bool


V1 = RoomVersion(
    identifier="1",
    stable=True,
    event_format=EventFormat.V1,
    state_res=StateResolution.V1,
    enforce_key_validity=False,
    special_case_aliases_auth=True,
    strict_canonical_json=False,
    limit_notifications_power_levels=False,
    redaction_auth_rule=True,
    knock_join_rule=False,
    restricted_join_rule=False,
    restricted_join_rule_fix=False,
    knock_restricted_join_rule=False,
    integer_only_power_levels=False,
    updated_redaction_rules=False,
    implicit_room_creator=False,
    redacts_in_content=False,
    room_id_from_create_event=False,
    privileged_creators=False,
)
# v2: state resolution v2.
V2 = dataclasses.replace(V1, identifier="2", state_res=StateResolution.V2)
# v3: event IDs are reference hashes; the redaction auth rule goes with domain-bearing IDs.
V3 = dataclasses.replace(V2, identifier="3", event_format=EventFormat.V3, redaction_auth_rule=False)
# v4: URL-safe base64 event IDs.
V4 = dataclasses.replace(V3, identifier="4", event_format=EventFormat.V4)
# v5: signing key validity periods.
V5 = dataclasses.replace(V4, identifier="5", enforce_key_validity=True)
# v6: no aliases special case, strict canonical JSON, `notifications` power levels.
V6 = dataclasses.replace(
    V5,
    identifier="6",
    special_case_aliases_auth=False,
    strict_canonical_json=True,
    limit_notifications_power_levels=True,
)
# v7: knocking.
V7 = dataclasses.replace(V6, identifier="7", knock_join_rule=True)
# v8: restricted join rule.
V8 = dataclasses.replace(V7, identifier="8", restricted_join_rule=True)
# v9: redaction keeps join_authorised_via_users_server.
V9 = dataclasses.replace(V8, identifier="9", restricted_join_rule_fix=True)
# v10: knock_restricted, integer-only power levels.
V10 = dataclasses.replace(
    V9, identifier="10", knock_restricted_join_rule=True, integer_only_power_levels=True
)
# v11: new redaction rules, implicit creator, `redacts` in content.
V11 = dataclasses.replace(
    V10,
    identifier="11",
    updated_redaction_rules=True,
    implicit_room_creator=True,
    redacts_in_content=True,
)
# v12: room ID = create event hash, privileged creators, state resolution v2.1.
V12 = dataclasses.replace(
    V11,
    identifier="12",
    state_res=StateResolution.V2_1,
    room_id_from_create_event=True,
    privileged_creators=True,
)

KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {
    rv.identifier: rv for rv in (V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12)
}

#: The versions whose every rule the core implements (all of them, room version 1 with
#: state resolution v1): rooms of these can be created and joined.
IMPLEMENTED_ROOM_VERSIONS: dict[str, RoomVersion] = dict(KNOWN_ROOM_VERSIONS)

# Spec v1.19, content/rooms/_index.md ("Complete list of room versions"): "Servers SHOULD use
# room version 12 as the default room version when creating new rooms."
DEFAULT_ROOM_VERSION = "12"


class UnknownRoomVersion(ValueError):
    """A room version identifier this server does not implement."""


def get_room_version(identifier: str) -> RoomVersion:
    """Look up a room version by identifier.

    Raises:
        UnknownRoomVersion: the identifier is not one of ``KNOWN_ROOM_VERSIONS``.
    """
    try:
        return KNOWN_ROOM_VERSIONS[identifier]
    except (KeyError, TypeError):
        raise UnknownRoomVersion(f"unknown room version {identifier!r}") from None
