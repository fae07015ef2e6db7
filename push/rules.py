"""The server-default push rules (spec v1.19, "Predefined Rules"), as data.

The spec lists them kind by kind, in priority order. Since v1.17 the legacy rules that
looked for mentions in ``content.body`` (``.m.rule.contains_display_name``,
``.m.rule.roomnotif`` and the content rule ``.m.rule.contains_user_name``) are no longer
part of the set; mentions are found through ``m.mentions`` (``.m.rule.is_user_mention``,
``.m.rule.is_room_mention``). Two rules name the user; :func:`default_rules` fills it in.

Server-default rules rank below the user's own rules of the same kind, except
``.m.rule.master``, which ranks above everything.
"""

from __future__ import annotations

from typing import Any

JsonDict = dict[str, Any]

#: Rule kinds, in the order they are checked.
KINDS = ("override", "content", "room", "sender", "underride")
MASTER_RULE_ID = ".m.rule.master"

#: Actions older versions of the spec defined; they must be ignored (stripped).
HISTORICAL_ACTIONS = ("dont_notify", "coalesce")

_USER_ID = "[the user's Matrix ID]"

_SOUND_DEFAULT = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}


def _match(key: str, pattern: str) -> JsonDict:
    return {"kind": "event_match", "key": key, "pattern": pattern}


def _rule(
    rule_id: str, conditions: list[JsonDict], actions: list[Any], enabled: bool = True
) -> JsonDict:
    return {
        "rule_id": rule_id,
        "default": True,
        "enabled": enabled,
        "conditions": conditions,
        "actions": actions,
    }


_OVERRIDE = [
    _rule(MASTER_RULE_ID, [], [], enabled=False),
    _rule(".m.rule.suppress_notices", [_match("content.msgtype", "m.notice")], []),
    _rule(
        ".m.rule.invite_for_me",
        [
            _match("type", "m.room.member"),
            _match("content.membership", "invite"),
            _match("state_key", _USER_ID),
        ],
        ["notify", _SOUND_DEFAULT],
    ),
    _rule(".m.rule.member_event", [_match("type", "m.room.member")], []),
    _rule(
        ".m.rule.is_user_mention",
        [
            {
                "kind": "event_property_contains",
                "key": "content.m\\.mentions.user_ids",
                "value": _USER_ID,
            }
        ],
        ["notify", _SOUND_DEFAULT, _HIGHLIGHT],
    ),
    _rule(
        ".m.rule.is_room_mention",
        [
            {"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
            {"kind": "sender_notification_permission", "key": "room"},
        ],
        ["notify", _HIGHLIGHT],
    ),
    _rule(
        ".m.rule.tombstone",
        [_match("type", "m.room.tombstone"), _match("state_key", "")],
        ["notify", _HIGHLIGHT],
    ),
    _rule(".m.rule.reaction", [_match("type", "m.reaction")], []),
    _rule(
        ".m.rule.room.server_acl",
        [_match("type", "m.room.server_acl"), _match("state_key", "")],
        [],
    ),
    _rule(
        ".m.rule.suppress_edits",
        [
            {
                "kind": "event_property_is",
                "key": "content.m\\.relates_to.rel_type",
                "value": "m.replace",
            }
        ],
        [],
    ),
]

_UNDERRIDE = [
    _rule(
        ".m.rule.call",
        [_match("type", "m.call.invite")],
        ["notify", {"set_tweak": "sound", "value": "ring"}],
    ),
    _rule(
        ".m.rule.encrypted_room_one_to_one",
        [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.encrypted")],
        ["notify", _SOUND_DEFAULT],
    ),
    _rule(
        ".m.rule.room_one_to_one",
        [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.message")],
        ["notify", _SOUND_DEFAULT],
    ),
    _rule(".m.rule.message", [_match("type", "m.room.message")], ["notify"]),
    _rule(".m.rule.encrypted", [_match("type", "m.room.encrypted")], ["notify"]),
]

_DEFAULTS: dict[str, list[JsonDict]] = {
    "override": _OVERRIDE,
    "content": [],
    "room": [],
    "sender": [],
    "underride": _UNDERRIDE,
}

#: rule_id -> kind of every server-default rule (rule IDs are unique across kinds).
DEFAULT_RULE_KINDS: dict[str, str] = {
    rule["rule_id"]: kind for kind, rules in _DEFAULTS.items() for rule in rules
}


def _substitute(value: Any, user_id: str) -> Any:
    if value == _USER_ID:
        return user_id
    if isinstance(value, dict):
        return {k: _substitute(v, user_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, user_id) for v in value]
    return value


def default_rules(user_id: str) -> dict[str, list[JsonDict]]:
    """The server-default rules of every kind for ``user_id``, in priority order (fresh
    copies: callers may change them)."""
    return {kind: _substitute(rules, user_id) for kind, rules in _DEFAULTS.items()}


def is_server_default(rule_id: str) -> bool:
    """Server-default rule IDs start with a dot; users may not create such rules."""
    return rule_id.startswith(".")


def strip_historical_actions(actions: list[Any]) -> list[Any]:
    """The actions without ``dont_notify`` and ``coalesce`` (spec: "Historical Actions")."""
    return [a for a in actions if a not in HISTORICAL_ACTIONS]
