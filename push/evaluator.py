"""Push rule evaluation (spec "Push Rules": conditions, actions), free of Django.

A user's ruleset is compiled once (:func:`compile_ruleset`) into the enabled rules in
priority order, each condition a small object; an event is prepared once for all of the
room's members (:class:`EventFacts`: the flattened event, the member count, the sender's
power), and each member's ruleset is walked until a rule matches. Conditions that do not
depend on the member are worked out once per event and remembered in the facts, so a
message in a room of a thousand users costs one glob per distinct pattern, not per user.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from matrixhs.protocol.acl import glob_match
from push.rules import KINDS

JsonDict = dict[str, Any]

#: The value of a flattened key: a string, integer, boolean, null or array.
Flat = dict[str, Any]

_MEMBER_COUNT = re.compile(r"^(==|<=|>=|<|>)?([0-9]+)$")
_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "==": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}
_WORD = re.compile(r"\w", re.UNICODE)


def _escape(key: str) -> str:
    return key.replace("\\", "\\\\").replace(".", "\\.")


def flatten(event: Mapping[str, Any]) -> Flat:
    """The event as dotted keys (spec: "the event is flattened"): a ``.`` or ``\\`` in a
    key is escaped with ``\\``; objects are walked, other values kept as they are."""
    flat: Flat = {}

    def walk(prefix: str, value: Mapping[str, Any]) -> None:
        for key, item in value.items():
            if not isinstance(key, str):
                continue
            name = prefix + _escape(key)
            if isinstance(item, dict):
                walk(name + ".", item)
            else:
                flat[name] = item

    walk("", event)
    return flat


def _is_word_char(text: str, index: int) -> bool:
    return 0 <= index < len(text) and _WORD.match(text[index]) is not None


def body_matches(pattern: str, body: str) -> bool:
    """A content rule's glob against ``content.body``: it matches the whole body, or a run
    of it between word boundaries. A pattern without wildcards is found in one pass; a
    pattern with wildcards is tried on the whole body and on each word."""
    pattern, body = pattern.lower(), body.lower()
    if glob_match(pattern, body):
        return True
    if "*" not in pattern and "?" not in pattern:
        start = body.find(pattern)
        while start >= 0 and pattern:
            end = start + len(pattern)
            if not _is_word_char(body, start - 1) and not _is_word_char(body, end):
                return True
            start = body.find(pattern, start + 1)
        return False
    return any(glob_match(pattern, word) for word in re.findall(r"\w+", body))


@dataclass
class EventFacts:
    """What the conditions read of one event, shared by every member of its room."""

    flat: Flat
    member_count: int
    sender_power: float
    #: ``notifications`` key -> level needed (``room``: 50 unless set).
    notification_levels: Mapping[str, int]
    memo: dict[Any, bool] = field(default_factory=dict)
    #: (ruleset, personal answers) -> actions, shared by members alike.
    results: dict[Any, Any] = field(default_factory=dict)
    _text: str | None = None
    #: Reads (sender_power, notification_levels) when a condition first needs them.
    power: Callable[[], tuple[float, Mapping[str, int]]] | None = None

    def sender_may_notify(self, key: str) -> bool:
        """``sender_notification_permission``: the sender's power reaches the level."""
        if self.power is not None:
            self.sender_power, self.notification_levels = self.power()
            self.power = None
        needed = self.notification_levels.get(key)
        return needed is not None and self.sender_power >= needed

    def may_name(self, user_id: str, display_name: str | None, by_display_name: bool) -> bool:
        """False when no personal condition can hold for a member: their user ID is
        in none of the event's strings, and (``by_display_name``) their display name is
        not in its body. Every personal condition compares the user ID with a string of
        the event (exactly, or as a glob without wildcards, or as a word run of the
        body), or looks for the display name in the body, so each needs that text."""
        if self._text is None:
            strings = [v for v in self.flat.values() if isinstance(v, str)]
            for value in self.flat.values():
                if isinstance(value, list):
                    strings += [v for v in value if isinstance(v, str)]
            self._text = "\0".join(strings).lower()
        user_id = user_id.lower()
        if "*" in user_id or "?" in user_id or user_id in self._text:
            return True
        if by_display_name and display_name:
            body = self.flat.get("content.body")
            name = display_name.replace("*", "").replace("?", "").lower()
            return isinstance(body, str) and name in body.lower()
        return False

    @classmethod
    def of(
        cls,
        event: Mapping[str, Any],
        member_count: int,
        sender_power: float,
        notification_levels: Mapping[str, int],
    ) -> EventFacts:
        return cls(flatten(event), member_count, sender_power, notification_levels)

    @classmethod
    def deferred(
        cls,
        event: Mapping[str, Any],
        member_count: int,
        power: Callable[[], tuple[float, Mapping[str, int]]],
    ) -> EventFacts:
        """Facts whose sender power and notification levels are read only if a rule
        gets to a ``sender_notification_permission`` condition (an @room mention)."""
        return cls(flatten(event), member_count, 0, {}, power=power)


@dataclass(frozen=True)
class Member:
    """The user a ruleset is evaluated for."""

    user_id: str
    display_name: str | None = None


@dataclass(frozen=True)
class Condition:
    """A compiled condition. ``personal`` ones compare with the member's own user ID
    (their ``arg`` is not stored, so that users' rulesets that differ only by their IDs
    compile to equal rulesets) or read their display name; the others give the same
    answer for every member and are worked out once per event."""

    kind: str
    key: str = ""
    arg: Any = None
    personal: bool = False

    def test(self, facts: EventFacts, member: Member) -> bool:
        if self.personal:
            return self._test(facts, member)
        memo = facts.memo.get(self)
        if memo is None:
            memo = facts.memo[self] = self._test(facts, member)
        return memo

    def _test(self, facts: EventFacts, member: Member) -> bool:
        arg = self.arg
        if self.personal and self.kind != "contains_display_name":
            arg = member.user_id.lower() if self.kind == "event_match" else member.user_id
        if self.kind == "event_match":
            value = facts.flat.get(self.key)
            if not isinstance(value, str):
                return False
            if self.key == "content.body":
                return body_matches(arg, value)
            return glob_match(arg, value.lower())
        if self.kind == "event_property_is":
            return _same_value(facts.flat.get(self.key, _ABSENT), arg)
        if self.kind == "event_property_contains":
            values = facts.flat.get(self.key)
            return isinstance(values, list) and any(_same_value(v, arg) for v in values)
        if self.kind == "room_member_count":
            op, count = arg
            return bool(_COMPARE[op](facts.member_count, count))
        if self.kind == "sender_notification_permission":
            return facts.sender_may_notify(self.key)
        if self.kind == "contains_display_name":
            body = facts.flat.get("content.body")
            name = member.display_name
            return bool(name) and isinstance(body, str) and body_matches_name(name or "", body)
        return False  # unknown kinds never match (spec)


def body_matches_name(name: str, body: str) -> bool:
    """``contains_display_name``: the display name, as a whole word run, in the body."""
    escaped = name.replace("*", "").replace("?", "")
    return bool(escaped.strip()) and body_matches(escaped, body)


class _Absent:
    pass


_ABSENT = _Absent()


def _same_value(value: Any, wanted: Any) -> bool:
    """Exact equality of scalars, with booleans never equal to integers."""
    if isinstance(value, _Absent) or isinstance(value, (dict, list)):
        return False
    return type(value) is type(wanted) and value == wanted


def compile_condition(raw: Any, user_id: str = "") -> Condition | None:
    """A condition as the rule holds it, compiled for ``user_id``; None for one that can
    never match (an unknown kind, a malformed one)."""
    if not isinstance(raw, dict):
        return None
    kind = raw.get("kind")
    key = raw.get("key")
    if kind == "event_match" and isinstance(key, str) and isinstance(raw.get("pattern"), str):
        return _literal(kind, key, raw["pattern"].lower(), user_id.lower())
    if kind in ("event_property_is", "event_property_contains") and isinstance(key, str):
        value = raw.get("value")
        if value is None or isinstance(value, (str, int, bool)):
            return _literal(kind, key, value, user_id)
        return None
    if kind == "room_member_count" and isinstance(raw.get("is"), str):
        match = _MEMBER_COUNT.match(raw["is"])
        if match is None:
            return None
        return Condition(kind, arg=(match.group(1) or "==", int(match.group(2))))
    if kind == "sender_notification_permission" and isinstance(key, str):
        return Condition(kind, key)
    if kind == "contains_display_name":
        return Condition(kind, personal=True)
    return None


def _literal(kind: str, key: str, value: Any, user_id: str) -> Condition:
    if user_id and isinstance(value, str) and value == user_id:
        return Condition(kind, key, personal=True)
    return Condition(kind, key, value)


@dataclass(frozen=True)
class Rule:
    rule_id: str
    conditions: tuple[Condition, ...]
    actions: tuple[Any, ...]


@dataclass(frozen=True)
class Ruleset:
    """A user's enabled rules in the order they are tried, and the personal conditions
    among them: two users whose rulesets are equal and whose personal conditions agree
    on an event get the same actions."""

    rules: tuple[Rule, ...]
    personal: tuple[Condition, ...]

    @cached_property
    def by_display_name(self) -> bool:
        return any(c.kind == "contains_display_name" for c in self.personal)


def _conditions_of(kind: str, rule: JsonDict, user_id: str) -> tuple[Condition, ...] | None:
    if kind == "content":
        pattern = rule.get("pattern")
        if not isinstance(pattern, str):
            return None
        return (_literal("event_match", "content.body", pattern.lower(), user_id.lower()),)
    if kind == "room":
        return (Condition("event_match", "room_id", str(rule["rule_id"]).lower()),)
    if kind == "sender":
        return (_literal("event_match", "sender", str(rule["rule_id"]).lower(), user_id.lower()),)
    compiled = [compile_condition(c, user_id) for c in rule.get("conditions") or []]
    if any(c is None for c in compiled):
        return None
    return tuple(c for c in compiled if c is not None)


_interned: dict[Ruleset, Ruleset] = {}


def compile_ruleset(ruleset: Mapping[str, Any], user_id: str = "") -> Ruleset:
    """The enabled rules of ``user_id``'s ``{"global": {kind: [rule, ...]}}`` ruleset, in
    the order they are tried; rules with a condition that can never match are left out.
    Equal compiled rulesets are one object (the server defaults are one for everybody)."""
    rules: list[Rule] = []
    kinds = ruleset.get("global", {}) if isinstance(ruleset, Mapping) else {}
    for kind in KINDS:
        for rule in kinds.get(kind, []) if isinstance(kinds, Mapping) else []:
            if not isinstance(rule, dict) or not rule.get("enabled", True):
                continue
            conditions = _conditions_of(kind, rule, user_id)
            if conditions is None:
                continue
            actions = rule.get("actions")
            rules.append(Rule(str(rule.get("rule_id")), conditions, _freeze(actions or [])))
    personal = {c: None for r in rules for c in r.conditions if c.personal}
    compiled = Ruleset(tuple(rules), tuple(personal))
    if len(_interned) > 10_000:
        _interned.clear()
    return _interned.setdefault(compiled, compiled)


def _freeze(value: Any) -> Any:
    """Actions as hashable values (tweaks become sorted item tuples)."""
    if isinstance(value, dict):
        return _FrozenDict((k, _freeze(v)) for k, v in sorted(value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


class _FrozenDict(tuple):  # type: ignore[type-arg]
    """A dict kept as a tuple of items, thawed back by :func:`_thaw`."""


def _thaw(value: Any) -> Any:
    if isinstance(value, _FrozenDict):
        return {k: _thaw(v) for k, v in value}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def evaluate(ruleset: Ruleset, facts: EventFacts, member: Member) -> tuple[Any, ...] | None:
    """The (frozen) actions of the first rule whose conditions all hold; None when none
    does. Members with the same ruleset and the same personal answers share one walk:
    in a big room, everybody on the server defaults whom the event does not name."""
    if not ruleset.personal:
        answers: tuple[bool, ...] = ()
    elif facts.may_name(member.user_id, member.display_name, ruleset.by_display_name):
        answers = tuple(c.test(facts, member) for c in ruleset.personal)
    else:
        answers = (False,) * len(ruleset.personal)
    key = (id(ruleset), answers)
    if key in facts.results:
        return facts.results[key]  # type: ignore[no-any-return]
    found = None
    for rule in ruleset.rules:
        if all(c.test(facts, member) for c in rule.conditions):
            found = rule.actions
            break
    facts.results[key] = found
    return found


@dataclass(frozen=True)
class Outcome:
    notify: bool
    highlight: bool
    actions: list[Any]


_outcomes: dict[Any, Outcome] = {}


def outcome_of(actions: tuple[Any, ...] | None) -> Outcome:
    """Whether frozen actions notify and highlight (``highlight`` without a value is
    true), and the actions as JSON."""
    outcome = _outcomes.get(actions)
    if outcome is not None:
        return outcome
    thawed: list[Any] = _thaw(actions) if actions else []
    notify = "notify" in thawed
    highlight = False
    for action in thawed:
        if isinstance(action, dict) and action.get("set_tweak") == "highlight":
            highlight = action.get("value", True) is True
    outcome = Outcome(notify, highlight and notify, thawed)
    if len(_outcomes) < 10_000:
        _outcomes[actions] = outcome
    return outcome
