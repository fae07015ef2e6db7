"""Reading ``m.room.power_levels`` (and the create event) the way the auth rules do.

Defaults follow the ``m.room.power_levels`` event schema: ``users_default``,
``events_default`` and ``invite`` 0; ``state_default``, ``kick``, ``ban`` and ``redact`` 50.
Without a power levels event, room versions 1 to 11 give the creator 100 and everyone else
0. From v12 the creators (create ``sender`` plus ``additional_creators``) have an infinite
power level whatever the power levels event says.

Values may be strings (v1-v9, "stringy power levels") or floats (v1-v5, "floaty power
levels"); both are read as integers. Values that cannot be read fall back to the default.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

from matrixhs.protocol.events import content_of
from matrixhs.protocol.room_versions import RoomVersion

#: The power level of a room creator from room version 12 (``math.inf``).
CREATOR_POWER_LEVEL = math.inf

#: A power level: an int, or ``CREATOR_POWER_LEVEL`` for v12 creators.
PowerLevel = int | float

_NAMED_LEVEL_DEFAULTS = {"ban": 50, "kick": 50, "redact": 50, "invite": 0}
# Spec "stringy power levels": optional whitespace, an optional sign, decimal digits.
_INTEGER_STRING = re.compile(r"\s*[+-]?[0-9]+\s*", re.ASCII)


def parse_power_level(value: object, rv: RoomVersion) -> int | None:
    """Read one power level value as the room version allows, or ``None`` if it can't be.

    Integers are always accepted (booleans are not integers). Strings holding an integer
    are accepted before v10; floats are truncated in rooms without strict canonical JSON
    (v1-v5).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and not rv.integer_only_power_levels:
        return int(value) if _INTEGER_STRING.fullmatch(value) else None
    if isinstance(value, float) and not rv.strict_canonical_json and math.isfinite(value):
        return int(value)
    return None


def _level_map(value: object, rv: RoomVersion) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    levels = {}
    for key, raw in value.items():
        level = parse_power_level(raw, rv)
        if isinstance(key, str) and level is not None:
            levels[key] = level
    return levels


def get_creators(create_event: Mapping[str, Any] | None, rv: RoomVersion) -> frozenset[str]:
    """The room creators.

    v1-v10: ``content.creator``; v11: the create event's ``sender``; v12: the ``sender``
    plus ``content.additional_creators``.
    """
    if create_event is None:
        return frozenset()
    if rv.implicit_room_creator:
        creator = create_event.get("sender")
    else:
        creator = content_of(create_event).get("creator")
    creators = {creator} if isinstance(creator, str) else set()
    if rv.privileged_creators:
        additional = content_of(create_event).get("additional_creators")
        if isinstance(additional, list):
            creators.update(user for user in additional if isinstance(user, str))
    return frozenset(creators)


@dataclasses.dataclass(frozen=True)
class PowerLevels:
    """The effective power levels of a room at some point.

    Build it with ``PowerLevels.from_state``.
    """

    rv: RoomVersion
    has_event: bool
    users: Mapping[str, int]
    users_default: int
    events: Mapping[str, int]
    events_default: int
    state_default: int
    notifications: Mapping[str, int]
    named: Mapping[str, int]
    creators: frozenset[str]

    @classmethod
    def from_state(
        cls,
        power_levels_event: Mapping[str, Any] | None,
        create_event: Mapping[str, Any] | None,
        rv: RoomVersion,
    ) -> PowerLevels:
        """Read the power levels from the current ``m.room.power_levels`` and create events."""
        content = content_of(power_levels_event) if power_levels_event is not None else None
        return cls.from_content(content, create_event, rv)

    @classmethod
    def from_content(
        cls,
        content: Mapping[str, Any] | None,
        create_event: Mapping[str, Any] | None,
        rv: RoomVersion,
    ) -> PowerLevels:
        """Read the power levels from a power levels ``content`` (``None``: no such event)."""
        has_event = content is not None
        content = content if content is not None else {}

        def level(name: str, default: int) -> int:
            parsed = parse_power_level(content.get(name), rv)
            return default if parsed is None else parsed

        return cls(
            rv=rv,
            has_event=has_event,
            users=_level_map(content.get("users"), rv),
            users_default=level("users_default", 0),
            events=_level_map(content.get("events"), rv),
            events_default=level("events_default", 0),
            state_default=level("state_default", 50),
            notifications=_level_map(content.get("notifications"), rv),
            named={name: level(name, default) for name, default in _NAMED_LEVEL_DEFAULTS.items()},
            creators=get_creators(create_event, rv),
        )

    def user_level(self, user_id: str) -> PowerLevel:
        """The power level of ``user_id``."""
        if self.rv.privileged_creators and user_id in self.creators:
            return CREATOR_POWER_LEVEL
        if not self.has_event:
            return 100 if user_id in self.creators else 0
        return self.users.get(user_id, self.users_default)

    def send_level(self, event_type: str, is_state: bool) -> int:
        """The level needed to send an event of ``event_type`` (the "required power level")."""
        if event_type in self.events:
            return self.events[event_type]
        return self.state_default if is_state else self.events_default

    def named_level(self, name: str) -> int:
        """The ``invite``, ``kick``, ``ban`` or ``redact`` level."""
        return self.named[name]

    def notification_level(self, key: str) -> int | None:
        """The level for a ``notifications`` key (``room`` defaults to 50)."""
        if key in self.notifications:
            return self.notifications[key]
        return 50 if key == "room" else None


def get_power_level(
    user_id: str,
    power_levels_content: Mapping[str, Any] | None,
    create_event: Mapping[str, Any] | None,
    rv: RoomVersion,
) -> PowerLevel:
    """The power level of ``user_id``.

    Args:
        user_id: the user.
        power_levels_content: ``content`` of the current ``m.room.power_levels`` event, or
            ``None`` if the room has none.
        create_event: the room's ``m.room.create`` event (it names the creators).
        rv: the room version.
    """
    return PowerLevels.from_content(power_levels_content, create_event, rv).user_level(user_id)


def get_required_level(
    event_type: str,
    state_key: str | None,
    power_levels_content: Mapping[str, Any] | None,
    rv: RoomVersion,
) -> int:
    """The power level needed to send an event of this type (state if ``state_key`` given).

    ``power_levels_content`` is ``None`` when the room has no power levels event.
    """
    levels = PowerLevels.from_content(power_levels_content, None, rv)
    return levels.send_level(event_type, state_key is not None)
