"""Reads of push: the user's whole ruleset, one rule, the pushers."""

from __future__ import annotations

from accounts.models import User
from matrixhs.errors import InvalidParam, JsonDict, NotFound
from push.models import DefaultRuleSetting, Pusher, PushRule
from push.rules import KINDS, MASTER_RULE_ID, default_rules


def check_kind(kind: str) -> str:
    """Raises: InvalidParam: not a push rule kind."""
    if kind not in KINDS:
        raise InvalidParam(f"Unknown push rule kind {kind!r}")
    return kind


def format_rule(rule: PushRule) -> JsonDict:
    """A user-defined rule as clients see it: conditions for override/underride rules,
    pattern for content rules, neither for room and sender rules."""
    body: JsonDict = {
        "rule_id": rule.rule_id,
        "default": False,
        "enabled": rule.enabled,
        "actions": rule.actions,
    }
    if rule.conditions is not None:
        body["conditions"] = rule.conditions
    if rule.pattern is not None:
        body["pattern"] = rule.pattern
    return body


def _defaults_with_settings(user: User) -> dict[str, list[JsonDict]]:
    defaults = default_rules(user.user_id)
    settings = {s.rule_id: s for s in DefaultRuleSetting.objects.filter(user=user)}
    for rules in defaults.values():
        for rule in rules:
            setting = settings.get(rule["rule_id"])
            if setting is None:
                continue
            if setting.enabled is not None:
                rule["enabled"] = setting.enabled
            if setting.actions is not None:
                rule["actions"] = setting.actions
    return defaults


def push_rules_content(user: User) -> JsonDict:
    """The user's whole ruleset: ``{"global": {kind: [rule, ...]}}`` (two queries).

    In each kind the user's rules come first, then the server-default ones, except that
    ``.m.rule.master`` leads the override rules.
    """
    defaults = _defaults_with_settings(user)
    own: dict[str, list[JsonDict]] = {kind: [] for kind in KINDS}
    for rule in PushRule.objects.filter(user=user).order_by("kind", "position", "pk"):
        own[rule.kind].append(format_rule(rule))
    ruleset: JsonDict = {kind: own[kind] + defaults[kind] for kind in KINDS}
    master, *other_defaults = defaults["override"]
    assert master["rule_id"] == MASTER_RULE_ID
    ruleset["override"] = [master, *own["override"], *other_defaults]
    return {"global": ruleset}


def get_push_rule(user: User, kind: str, rule_id: str) -> JsonDict:
    """One rule of the user's ruleset, default or not.

    Raises:
        InvalidParam: unknown kind.
        NotFound: no such rule of that kind.
    """
    check_kind(kind)
    for rule in push_rules_content(user)["global"][kind]:
        if rule["rule_id"] == rule_id:
            return rule  # type: ignore[no-any-return]
    raise NotFound("The push rule was not found.")


def format_pusher(pusher: Pusher) -> JsonDict:
    body: JsonDict = {
        "pushkey": pusher.pushkey,
        "kind": pusher.kind,
        "app_id": pusher.app_id,
        "app_display_name": pusher.app_display_name,
        "device_display_name": pusher.device_display_name,
        "lang": pusher.lang,
        "data": pusher.data,
    }
    if pusher.profile_tag is not None:
        body["profile_tag"] = pusher.profile_tag
    return body


def list_pushers(user: User) -> list[JsonDict]:
    return [format_pusher(p) for p in Pusher.objects.filter(user=user).order_by("created_ts", "pk")]
