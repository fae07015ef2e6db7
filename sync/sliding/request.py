"""Sliding sync requests: the body (lists, subscriptions, extensions) and room configs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from accounts.models import User
from matrixhs.errors import BadJson, JsonDict

#: Events that move a room up the list, in the clients' eyes (MSC4186 bump_stamp).
BUMP_TYPES = (
    "m.room.create",
    "m.room.message",
    "m.room.encrypted",
    "m.sticker",
    "m.call.invite",
    "m.poll.start",
    "m.beacon_info",
)
MAX_TIMELINE_LIMIT = 1000
MAX_LISTS = 100


@dataclass
class RoomConfig:
    timeline_limit: int = 0
    required_state: set[tuple[str, str]] = field(default_factory=set)

    def merge(self, other: RoomConfig) -> None:
        self.timeline_limit = max(self.timeline_limit, other.timeline_limit)
        self.required_state |= other.required_state

    def key(self) -> str:
        return json.dumps(sorted(self.required_state))


@dataclass
class SlidingRequest:
    user: User
    device_id: str | None
    conn_id: str
    pos: str | None
    lists: dict[str, JsonDict]
    subscriptions: dict[str, RoomConfig]
    extensions: JsonDict


# --- the request ----------------------------------------------------------------------------


def parse_room_config(raw: Any, where: str) -> RoomConfig:
    if not isinstance(raw, dict):
        raise BadJson(f"{where} must be an object")
    limit = raw.get("timeline_limit", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise BadJson(f"{where}.timeline_limit must be a non-negative integer")
    required = raw.get("required_state", [])
    if not isinstance(required, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p) for p in required
    ):
        raise BadJson(f"{where}.required_state must be a list of [type, state_key] pairs")
    return RoomConfig(min(limit, MAX_TIMELINE_LIMIT), {(t, k) for t, k in required})


def parse_request(
    user: User, device_id: str | None, query: dict[str, str], body: JsonDict
) -> SlidingRequest:
    """Raises: BadJson / InvalidParam for malformed bodies."""
    lists = body.get("lists", {})
    subscriptions = body.get("room_subscriptions", {})
    extensions = body.get("extensions", {})
    conn_id = body.get("conn_id", "")
    if not isinstance(lists, dict) or len(lists) > MAX_LISTS:
        raise BadJson("lists must be an object of at most 100 lists")
    if not isinstance(subscriptions, dict) or not isinstance(extensions, dict):
        raise BadJson("room_subscriptions and extensions must be objects")
    if not isinstance(conn_id, str):
        raise BadJson("conn_id must be a string")
    for name, config in lists.items():
        parse_room_config(config, f"lists.{name}")
        ranges = config.get("ranges")
        if ranges is not None and not (
            isinstance(ranges, list)
            and all(
                isinstance(r, list)
                and len(r) == 2
                and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in r)
                for r in ranges
            )
        ):
            raise BadJson(f"lists.{name}.ranges must be a list of [start, end] pairs")
        if config.get("filters") is not None and not isinstance(config["filters"], dict):
            raise BadJson(f"lists.{name}.filters must be an object")
    return SlidingRequest(
        user=user,
        device_id=device_id,
        conn_id=conn_id,
        pos=query.get("pos"),
        lists=lists,
        subscriptions={
            room_id: parse_room_config(c, f"room_subscriptions.{room_id}")
            for room_id, c in subscriptions.items()
        },
        extensions=extensions,
    )
