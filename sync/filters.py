"""Filters (spec "Filtering"): parsing with the spec's validation, and matching.

``RoomEventFilter`` is used by /messages, /context and /sync's timelines; the SQL
side (``as_q``) narrows a query, ``matches`` checks what SQL cannot (``contains_url``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from matrixhs.errors import BadJson, JsonDict, NotJson
from matrixhs.http import loads_strict


def _glob(pattern: str) -> str:
    """A filter pattern ("m.room.*") as an anchored regular expression."""
    return "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"


def _string_list(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadJson(f"Filter field {name} must be a list of strings")
    return value


def _pattern_q(field_name: str, patterns: list[str]) -> Q:
    q = Q(pk__in=[])
    for pattern in patterns:
        if "*" in pattern:
            q |= Q(**{f"{field_name}__regex": _glob(pattern)})
        else:
            q |= Q(**{field_name: pattern})
    return q


@dataclass(frozen=True)
class RoomEventFilter:
    limit: int | None = None
    types: list[str] | None = None
    not_types: list[str] = field(default_factory=list)
    senders: list[str] | None = None
    not_senders: list[str] = field(default_factory=list)
    rooms: list[str] | None = None
    not_rooms: list[str] = field(default_factory=list)
    contains_url: bool | None = None
    lazy_load_members: bool = False
    include_redundant_members: bool = False
    unread_thread_notifications: bool = False

    @classmethod
    def parse(cls, data: Any) -> RoomEventFilter:
        """Raises: BadJson: a field of the wrong type."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise BadJson("A filter must be a JSON object")
        limit = data.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise BadJson("Filter limit must be a positive integer")
        flags = {}
        for name in ("contains_url", "lazy_load_members", "include_redundant_members",
                     "unread_thread_notifications"):
            value = data.get(name)
            if value is not None and not isinstance(value, bool):
                raise BadJson(f"Filter field {name} must be a boolean")
            if value is not None:
                flags[name] = value
        return cls(
            limit=limit,
            types=_string_list(data.get("types"), "types"),
            not_types=_string_list(data.get("not_types"), "not_types") or [],
            senders=_string_list(data.get("senders"), "senders"),
            not_senders=_string_list(data.get("not_senders"), "not_senders") or [],
            rooms=_string_list(data.get("rooms"), "rooms"),
            not_rooms=_string_list(data.get("not_rooms"), "not_rooms") or [],
            **flags,
        )

    @classmethod
    def from_query(cls, raw: str | None) -> RoomEventFilter:
        """The ``filter`` query parameter of /messages and /context (inline JSON).

        Raises:
            NotJson: not JSON. BadJson: not a valid filter.
        """
        if not raw:
            return cls()
        try:
            data = loads_strict(raw)
        except ValueError as exc:
            raise NotJson("The filter is not valid JSON") from exc
        return cls.parse(data)

    def as_q(self) -> Q:
        """The SQL part of the filter, on Event rows."""
        q = Q()
        if self.types is not None:
            q &= _pattern_q("type", self.types)
        if self.not_types:
            q &= ~_pattern_q("type", self.not_types)
        if self.senders is not None:
            q &= Q(sender__in=self.senders)
        if self.not_senders:
            q &= ~Q(sender__in=self.not_senders)
        if self.rooms is not None:
            q &= Q(room__room_id__in=self.rooms)
        if self.not_rooms:
            q &= ~Q(room__room_id__in=self.not_rooms)
        return q

    def matches_content(self, content: JsonDict) -> bool:
        """The part SQL does not check: ``contains_url``."""
        if self.contains_url is None:
            return True
        return ("url" in content) == self.contains_url
