"""Event filters (spec "Filtering"): parsing with the spec's validation, and matching.

``RoomEventFilter`` is used by /messages, /context and /sync's timelines; the SQL
side (``as_q``) narrows a query, ``matches_content`` checks what SQL cannot
(``contains_url``), ``matches`` checks an event already in memory. ``Filter`` is the whole
filter of /sync. Stored filters (POST /user/{userId}/filter) live in sync.filters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F, Lookup, Q
from django.db.models.sql.compiler import SQLCompiler

from matrixhs.errors import BadJson, JsonDict, NotJson
from matrixhs.http import loads_strict
from matrixhs.protocol.ids import InvalidIdentifier, parse_room_id, parse_user_id

EVENT_FORMATS = ("client", "federation")

#: The longest type pattern, in UTF-8 bytes: an event type is at most 255 bytes (spec
#: "Size limits"), so a longer pattern is no use.
MAX_PATTERN_BYTES = 255
#: The most patterns with a wildcard in one ``types`` or ``not_types`` list: each is one
#: term of the SQL query (exact types are one IN list, however many).
MAX_WILDCARD_PATTERNS = 100


def glob_matches(pattern: str, value: str) -> bool:
    """Whether ``value`` matches a filter pattern, where ``*`` is any run of characters
    and every other character stands for itself (spec "Filtering").

    The literal parts are found left to right, each at its first place after the previous
    one (the earliest place never rules out a match), with str.find: time linear in the
    value and the pattern, where a regular expression backtracks exponentially on
    patterns such as ``a*a*a*a*b``.
    """
    first, *middle = pattern.split("*")
    if not middle:
        return value == pattern
    last = middle.pop()
    end = len(value) - len(last)
    if end < len(first) or not value.startswith(first) or not value.endswith(last):
        return False
    position = len(first)
    for part in middle:
        found = value.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


class Glob(Lookup):  # type: ignore[type-arg]
    """SQL: the left side matches a filter pattern (see :func:`glob_matches`), in the
    database's own pattern matcher: GLOB on SQLite, LIKE on PostgreSQL. Both take time
    proportional to the value's length times the pattern's, never exponential."""

    lookup_name = "matrix_glob"
    prepare_rhs = False

    def as_sql(self, compiler: SQLCompiler, connection: Any) -> tuple[str, list[Any]]:
        lhs, params = self.process_lhs(compiler, connection)
        like = self.rhs.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"{lhs} LIKE %s", [*params, like.replace("*", "%")]

    def as_sqlite(self, compiler: SQLCompiler, connection: Any) -> tuple[str, list[Any]]:
        lhs, params = self.process_lhs(compiler, connection)
        glob = self.rhs.replace("[", "[[]").replace("?", "[?]")
        return f"{lhs} GLOB %s", [*params, glob]


def _matches_any(value: str, patterns: list[str]) -> bool:
    return any(glob_matches(p, value) for p in patterns)


def _allowed(
    value: str | None, allow: list[str] | None, deny: list[str], globs: bool = False
) -> bool:
    """Whether ``value`` passes an include list (None: all) and an exclude list."""
    if value is None:
        return True
    if globs:
        return (allow is None or _matches_any(value, allow)) and not _matches_any(value, deny)
    return (allow is None or value in allow) and value not in deny


def _limit(data: JsonDict) -> int | None:
    limit = data.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise BadJson("Filter limit must be a positive integer")
    return limit


def _string_list(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadJson(f"Filter field {name} must be a list of strings")
    return value


def _id_list(value: Any, name: str, parse: Callable[[str], str]) -> list[str] | None:
    """A list of room or user IDs (``rooms``, ``senders`` and their ``not_`` forms)."""
    ids = _string_list(value, name)
    for identifier in ids or ():
        try:
            parse(identifier)
        except InvalidIdentifier as exc:
            raise BadJson(f"Filter field {name}: {exc}") from None
    return ids


def _pattern_list(value: Any, name: str) -> list[str] | None:
    """A ``types``/``not_types`` list, its patterns bounded (MAX_PATTERN_BYTES, and at most
    MAX_WILDCARD_PATTERNS with a ``*``).

    Raises:
        BadJson: not a list of strings, or past a bound.
    """
    patterns = _string_list(value, name)
    if patterns is None:
        return None
    if any(len(p.encode("utf-8")) > MAX_PATTERN_BYTES for p in patterns):
        raise BadJson(f"Filter field {name}: patterns are at most {MAX_PATTERN_BYTES} bytes")
    if sum("*" in p for p in patterns) > MAX_WILDCARD_PATTERNS:
        raise BadJson(f"Filter field {name}: at most {MAX_WILDCARD_PATTERNS} patterns with *")
    return patterns


def _pattern_q(field_name: str, patterns: list[str]) -> Q:
    """One IN list for the exact names (a chain of ORs would go past SQLite's expression
    depth), one term per pattern with a wildcard."""
    q = Q(**{f"{field_name}__in": [p for p in patterns if "*" not in p]})
    for pattern in patterns:
        if "*" in pattern:
            q |= Q(Glob(F(field_name), pattern))
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
        limit = _limit(data)
        flags = {}
        for name in (
            "contains_url",
            "lazy_load_members",
            "include_redundant_members",
            "unread_thread_notifications",
        ):
            value = data.get(name)
            if value is not None and not isinstance(value, bool):
                raise BadJson(f"Filter field {name} must be a boolean")
            if value is not None:
                flags[name] = value
        return cls(
            limit=limit,
            types=_pattern_list(data.get("types"), "types"),
            not_types=_pattern_list(data.get("not_types"), "not_types") or [],
            senders=_id_list(data.get("senders"), "senders", parse_user_id),
            not_senders=_id_list(data.get("not_senders"), "not_senders", parse_user_id) or [],
            rooms=_id_list(data.get("rooms"), "rooms", parse_room_id),
            not_rooms=_id_list(data.get("not_rooms"), "not_rooms", parse_room_id) or [],
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

    def is_trivial(self) -> bool:
        """Whether it lets every event through (lazy loading aside)."""
        return (
            self.types is None
            and not self.not_types
            and self.senders is None
            and not self.not_senders
            and self.rooms is None
            and not self.not_rooms
            and self.contains_url is None
        )

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

    def matches(self, event: JsonDict) -> bool:
        """Whether an event in memory (ephemeral, per-room account data, ...) passes:
        its ``room_id`` (when it has one), ``type``, ``sender`` and ``contains_url``."""
        content = event.get("content")
        return (
            _allowed(event.get("room_id"), self.rooms, self.not_rooms)
            and _allowed(event.get("type"), self.types, self.not_types, globs=True)
            and _allowed(event.get("sender"), self.senders, self.not_senders)
            and self.matches_content(content if isinstance(content, dict) else {})
        )


@dataclass(frozen=True)
class EventFilter:
    """The filter of the presence and global account-data sections of /sync."""

    limit: int | None = None
    types: list[str] | None = None
    not_types: list[str] = field(default_factory=list)
    senders: list[str] | None = None
    not_senders: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, data: Any) -> EventFilter:
        """Raises: BadJson: a field of the wrong type."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise BadJson("A filter must be a JSON object")
        return cls(
            limit=_limit(data),
            types=_pattern_list(data.get("types"), "types"),
            not_types=_pattern_list(data.get("not_types"), "not_types") or [],
            senders=_id_list(data.get("senders"), "senders", parse_user_id),
            not_senders=_id_list(data.get("not_senders"), "not_senders", parse_user_id) or [],
        )

    def matches(self, event_type: str, sender: str | None = None) -> bool:
        return _allowed(event_type, self.types, self.not_types, globs=True) and _allowed(
            sender, self.senders, self.not_senders
        )

    def apply(self, events: list[JsonDict]) -> list[JsonDict]:
        """The events that pass (by ``type`` and ``sender``), at most ``limit`` of them."""
        kept = [e for e in events if self.matches(e.get("type", ""), e.get("sender"))]
        return kept[: self.limit] if self.limit is not None else kept


@dataclass(frozen=True)
class RoomFilter:
    """The ``room`` part of a filter. ``rooms``/``not_rooms`` apply before the
    per-section filters (which have their own ``rooms``/``not_rooms`` too)."""

    rooms: list[str] | None = None
    not_rooms: list[str] = field(default_factory=list)
    include_leave: bool = False
    account_data: RoomEventFilter = field(default_factory=RoomEventFilter)
    ephemeral: RoomEventFilter = field(default_factory=RoomEventFilter)
    state: RoomEventFilter = field(default_factory=RoomEventFilter)
    timeline: RoomEventFilter = field(default_factory=RoomEventFilter)

    @classmethod
    def parse(cls, data: Any) -> RoomFilter:
        """Raises: BadJson: a field of the wrong type."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise BadJson("Filter field room must be a JSON object")
        include_leave = data.get("include_leave", False)
        if include_leave is not None and not isinstance(include_leave, bool):
            raise BadJson("Filter field include_leave must be a boolean")
        return cls(
            rooms=_id_list(data.get("rooms"), "rooms", parse_room_id),
            not_rooms=_id_list(data.get("not_rooms"), "not_rooms", parse_room_id) or [],
            include_leave=bool(include_leave),
            account_data=RoomEventFilter.parse(data.get("account_data")),
            ephemeral=RoomEventFilter.parse(data.get("ephemeral")),
            state=RoomEventFilter.parse(data.get("state")),
            timeline=RoomEventFilter.parse(data.get("timeline")),
        )

    def allows_room(self, room_id: str) -> bool:
        return _allowed(room_id, self.rooms, self.not_rooms)


def _split_path(path: str) -> list[str]:
    r"""A dot-separated property path ("content.m\.relates_to") as its keys (spec
    appendix "Dot-separated property paths": ``\.`` is a dot, ``\\`` a backslash)."""
    keys, current, escaped = [], "", False
    for char in path:
        if escaped:
            current += char if char in ".\\" else "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            keys.append(current)
            current = ""
        else:
            current += char
    keys.append(current + ("\\" if escaped else ""))
    return keys


@dataclass(frozen=True)
class Filter:
    """A whole filter (spec "Filter": POST /user/{userId}/filter, /sync's ``filter``)."""

    event_fields: list[str] | None = None
    event_format: str = "client"
    presence: EventFilter = field(default_factory=EventFilter)
    account_data: EventFilter = field(default_factory=EventFilter)
    room: RoomFilter = field(default_factory=RoomFilter)

    @classmethod
    def parse(cls, data: Any) -> Filter:
        """Raises: BadJson: not an object, a field of the wrong type, an event_format
        other than client or federation."""
        if not isinstance(data, dict):
            raise BadJson("A filter must be a JSON object")
        event_format = data.get("event_format") or "client"
        if event_format not in EVENT_FORMATS:
            raise BadJson("Filter field event_format must be client or federation")
        return cls(
            event_fields=_string_list(data.get("event_fields"), "event_fields"),
            event_format=event_format,
            presence=EventFilter.parse(data.get("presence")),
            account_data=EventFilter.parse(data.get("account_data")),
            room=RoomFilter.parse(data.get("room")),
        )

    def project(self, event: JsonDict) -> JsonDict:
        """The event with only the ``event_fields`` (all of it when there are none)."""
        if self.event_fields is None:
            return event
        result: JsonDict = {}
        for path in self.event_fields:
            keys = _split_path(path)
            value: Any = event
            for key in keys:
                if not isinstance(value, dict) or key not in value:
                    break
                value = value[key]
            else:
                target = result
                for key in keys[:-1]:
                    target = target.setdefault(key, {})
                target[keys[-1]] = value
        return result
