"""Writes of push: the user's rules, their settings of server-default rules, pushers.

After every change to a user's rules, the whole ruleset is copied to their
``m.push_rules`` account data in the same transaction (spec "Push Rules: Events"): that
write takes the account-data stream position, last, and wakes the user's /sync.
A user's rule changes are serialised on their User row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from accounts.actions.account_data import do_set_account_data
from accounts.models import Device, User
from matrixhs.errors import (
    BadJson,
    Codes,
    InvalidParam,
    JsonDict,
    MatrixError,
    MissingParam,
    NotFound,
)
from matrixhs.protocol.ids import InvalidIdentifier, parse_room_id, parse_user_id
from matrixhs.time import now_ms
from push.models import DefaultRuleSetting, Pusher, PushRule
from push.queries import check_kind, push_rules_content
from push.rules import DEFAULT_RULE_KINDS, HISTORICAL_ACTIONS, is_server_default

PUSH_RULES_TYPE = "m.push_rules"
MAX_RULE_ID_LENGTH = 255
MAX_SAFE_INTEGER = 2**53 - 1
_MEMBER_COUNT_RE = re.compile(r"^(==|<|>|>=|<=)?[0-9]+$")

#: The string parameters each known condition kind needs (spec "Conditions").
_CONDITION_STRINGS = {
    "event_match": ("key", "pattern"),
    "event_property_is": ("key",),
    "event_property_contains": ("key",),
    "sender_notification_permission": ("key",),
    "room_member_count": ("is",),
    "contains_display_name": (),
}
_CONDITION_VALUES = ("event_property_is", "event_property_contains")


@dataclass(frozen=True)
class RuleSpec:
    """A user-defined rule as a PUT gives it, checked."""

    kind: str
    rule_id: str
    actions: list[Any]
    conditions: list[JsonDict] | None = None
    pattern: str | None = None


# --- Checks -----------------------------------------------------------------------------------


def check_rule_id(kind: str, rule_id: str) -> str:
    """Raises: InvalidParam: a server-default ID, slashes, too long, or (room and sender
    rules) not the room or user ID the kind requires."""
    if is_server_default(rule_id):
        raise InvalidParam("Rule IDs starting with '.' are reserved for server-default rules")
    if not rule_id or "/" in rule_id or "\\" in rule_id:
        raise InvalidParam("Rule IDs may not be empty or contain slashes")
    if len(rule_id) > MAX_RULE_ID_LENGTH:
        raise InvalidParam(f"Rule IDs are at most {MAX_RULE_ID_LENGTH} characters")
    try:
        if kind == "room":
            parse_room_id(rule_id)
        elif kind == "sender":
            parse_user_id(rule_id)
    except InvalidIdentifier as exc:
        raise InvalidParam(f"The rule ID of a {kind} rule must be a {kind} ID: {exc}") from exc
    return rule_id


def check_actions(value: Any) -> list[Any]:
    """The actions, as the client wrote them. The historical ``dont_notify`` and
    ``coalesce`` are kept (a client reads back what it stored); evaluation ignores them
    (push.rules.strip_historical_actions).

    Raises:
        BadJson: not a list of strings and objects.
        InvalidParam: an unknown action, or an object without ``set_tweak``.
    """
    if not isinstance(value, list):
        raise BadJson("actions must be a list")
    actions: list[Any] = []
    for action in value:
        if isinstance(action, str):
            if action != "notify" and action not in HISTORICAL_ACTIONS:
                raise InvalidParam(f"Unknown action {action!r}")
        elif isinstance(action, dict):
            if not isinstance(action.get("set_tweak"), str):
                raise InvalidParam("An action object needs a set_tweak string")
        else:
            raise BadJson("Each action must be a string or an object")
        actions.append(action)
    return actions


def _is_scalar(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    return isinstance(value, int) and abs(value) <= MAX_SAFE_INTEGER


def check_conditions(value: Any) -> list[JsonDict]:
    """Conditions of an override or underride rule. Unknown kinds are kept (they never
    match, spec "Conditions"); known kinds must have their parameters.

    Raises:
        BadJson: not a list of objects with a kind, or a parameter missing or mistyped.
        InvalidParam: a room_member_count ``is`` that is not ``[==|<|>|>=|<=]N``.
    """
    if not isinstance(value, list):
        raise BadJson("conditions must be a list")
    for condition in value:
        if not isinstance(condition, dict) or not isinstance(condition.get("kind"), str):
            raise BadJson("Each condition must be an object with a kind")
        kind = condition["kind"]
        for name in _CONDITION_STRINGS.get(kind, ()):
            if not isinstance(condition.get(name), str):
                raise BadJson(f"A {kind} condition needs a string {name}")
        if kind in _CONDITION_VALUES and (
            "value" not in condition or not _is_scalar(condition["value"])
        ):
            raise BadJson(f"A {kind} condition needs a string, integer, boolean or null value")
        if kind == "room_member_count" and not _MEMBER_COUNT_RE.match(condition["is"]):
            raise InvalidParam("room_member_count 'is' must be a number with an optional prefix")
    return value


def check_rule(kind: str, rule_id: str, body: JsonDict) -> RuleSpec:
    """A PUT of a user-defined rule, checked.

    Raises:
        InvalidParam: bad kind, rule ID, action or pattern.
        MissingParam: no actions, or a content rule without pattern.
        BadJson: wrong types.
    """
    check_kind(kind)
    check_rule_id(kind, rule_id)
    if "actions" not in body:
        raise MissingParam("Missing parameter: actions")
    actions = check_actions(body["actions"])
    if kind in ("override", "underride"):
        return RuleSpec(
            kind, rule_id, actions, conditions=check_conditions(body.get("conditions", []))
        )
    if kind == "content":
        pattern = body.get("pattern")
        if pattern is None:
            raise MissingParam("Missing parameter: pattern")
        if not isinstance(pattern, str):
            raise BadJson("pattern must be a string")
        if not pattern:
            raise InvalidParam("pattern may not be empty")
        return RuleSpec(kind, rule_id, actions, pattern=pattern)
    return RuleSpec(kind, rule_id, actions)


# --- Rules --------------------------------------------------------------------------------


def _lock_user(user: User) -> None:
    User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()


def _publish(user: User) -> None:
    """Copy the ruleset to the user's account data (last: it takes a stream position)."""
    do_set_account_data(user, PUSH_RULES_TYPE, push_rules_content(user))


def _anchor(
    rules: list[PushRule], rule_id: str, before: str | None, after: str | None
) -> str | None:
    """The rule ``before`` (or else ``after``) names, checked.

    Raises:
        InvalidParam: it is a server-default rule or the rule itself.
        MatrixError: 400 M_UNKNOWN, no such rule of this kind.
    """
    anchor = before if before is not None else after
    if anchor is None:
        return None
    if is_server_default(anchor):
        raise InvalidParam("A rule cannot be placed relative to a server-default rule")
    if anchor == rule_id:
        raise InvalidParam("A rule cannot be placed relative to itself")
    if all(rule.rule_id != anchor for rule in rules):
        raise MatrixError(400, Codes.UNKNOWN, f"before/after rule not found: {anchor}")
    return anchor


def do_set_push_rule(
    user: User, spec: RuleSpec, before: str | None = None, after: str | None = None
) -> None:
    """Create or update a user-defined rule (spec PUT /pushrules/global/{kind}/{ruleId}).

    A new rule is the user's most important of its kind unless ``before`` (next more
    important than that rule) or ``after`` (next less important) says otherwise; an
    updated rule keeps its place and its enabled flag unless they do.

    Raises:
        InvalidParam, MatrixError: see :func:`_anchor`.
    """
    with transaction.atomic():
        _lock_user(user)
        rules = list(PushRule.objects.filter(user=user, kind=spec.kind).order_by("position", "pk"))
        anchor = _anchor(rules, spec.rule_id, before, after)
        rule = next((r for r in rules if r.rule_id == spec.rule_id), None)
        if rule is None:
            index = 0
            rule = PushRule(user=user, kind=spec.kind, rule_id=spec.rule_id, position=0)
        else:
            index = rules.index(rule)
            rules.remove(rule)
        if anchor is not None:
            index = [r.rule_id for r in rules].index(anchor) + (0 if before is not None else 1)
        rule.actions, rule.conditions, rule.pattern = spec.actions, spec.conditions, spec.pattern
        rules.insert(index, rule)
        for position, each in enumerate(rules):
            each.position = position
        rule.save()
        PushRule.objects.bulk_update([r for r in rules if r is not rule], ["position"])
        _publish(user)


def do_delete_push_rule(user: User, kind: str, rule_id: str) -> None:
    """Raises: InvalidParam: a server-default rule. NotFound: no such rule."""
    check_kind(kind)
    if DEFAULT_RULE_KINDS.get(rule_id) == kind:
        raise InvalidParam("Server-default rules cannot be deleted")
    with transaction.atomic():
        _lock_user(user)
        deleted, _ = PushRule.objects.filter(user=user, kind=kind, rule_id=rule_id).delete()
        if not deleted:
            raise NotFound("The push rule was not found.")
        _publish(user)


def _set_attribute(user: User, kind: str, rule_id: str, **change: Any) -> None:
    """Set ``enabled`` or ``actions`` of any rule, default or not.

    Raises:
        InvalidParam: unknown kind. NotFound: no such rule of that kind.
    """
    check_kind(kind)
    with transaction.atomic():
        _lock_user(user)
        if DEFAULT_RULE_KINDS.get(rule_id) == kind:
            DefaultRuleSetting.objects.update_or_create(user=user, rule_id=rule_id, defaults=change)
        elif not PushRule.objects.filter(user=user, kind=kind, rule_id=rule_id).update(**change):
            raise NotFound("The push rule was not found.")
        _publish(user)


def do_set_push_rule_enabled(user: User, kind: str, rule_id: str, enabled: bool) -> None:
    """Raises: InvalidParam: unknown kind. NotFound: no such rule."""
    _set_attribute(user, kind, rule_id, enabled=enabled)


def do_set_push_rule_actions(user: User, kind: str, rule_id: str, actions: list[Any]) -> None:
    """``actions`` as :func:`check_actions` returns them.

    Raises:
        InvalidParam: unknown kind. NotFound: no such rule.
    """
    _set_attribute(user, kind, rule_id, actions=actions)


# --- Pushers ------------------------------------------------------------------------------

PUSHER_KINDS = ("http", "email")
NOTIFY_PATH = "/_matrix/push/v1/notify"
MAX_APP_ID_LENGTH = 64
MAX_PUSHKEY_BYTES = 512


@dataclass(frozen=True)
class PusherSpec:
    """A pusher as POST /pushers/set gives it, checked; ``kind`` None deletes it."""

    kind: str | None
    app_id: str
    pushkey: str
    app_display_name: str = ""
    device_display_name: str = ""
    profile_tag: str | None = None
    lang: str = ""
    data: JsonDict | None = None
    append: bool = False


def _check_http_data(data: JsonDict) -> None:
    url = data.get("url")
    if url is None:
        raise MissingParam("Missing parameter: data.url (required for http pushers)")
    if not isinstance(url, str):
        raise BadJson("data.url must be a string")
    parts = urlsplit(url)
    schemes = ("https", "http") if settings.MATRIXHS_PUSH_ALLOW_HTTP else ("https",)
    if parts.scheme not in schemes or not parts.netloc or parts.path != NOTIFY_PATH:
        raise InvalidParam(f"data.url must be an HTTPS URL with the path {NOTIFY_PATH}")
    if "format" in data and not isinstance(data["format"], str):
        raise BadJson("data.format must be a string")


def check_pusher(body: JsonDict) -> PusherSpec:
    """``body`` as push.schemas.PusherSetBody parses it.

    Raises:
        MissingParam: a field required for this kind is absent.
        InvalidParam: unknown or unsupported kind, app_id or pushkey too long, bad URL.
        BadJson: wrong types in ``data``.
    """
    app_id, pushkey = body["app_id"], body["pushkey"]
    if len(app_id) > MAX_APP_ID_LENGTH:
        raise InvalidParam(f"app_id is at most {MAX_APP_ID_LENGTH} characters")
    if len(pushkey.encode("utf-8")) > MAX_PUSHKEY_BYTES:
        raise InvalidParam(f"pushkey is at most {MAX_PUSHKEY_BYTES} bytes")
    kind = body["kind"]
    if kind is None:
        return PusherSpec(None, app_id, pushkey)
    if kind not in PUSHER_KINDS:
        raise InvalidParam(f"Unknown pusher kind {kind!r}")
    if kind == "email":
        raise InvalidParam("Email pushers are not supported by this server")
    missing = [
        name
        for name in ("app_display_name", "device_display_name", "lang", "data")
        if name not in body
    ]
    if missing:
        raise MissingParam(f"Missing parameters: {', '.join(missing)}")
    _check_http_data(body["data"])
    return PusherSpec(
        kind,
        app_id,
        pushkey,
        body["app_display_name"],
        body["device_display_name"],
        body.get("profile_tag"),
        body["lang"],
        body["data"],
        body["append"],
    )


def do_set_pusher(user: User, device: Device | None, spec: PusherSpec) -> None:
    """Create, update or (``spec.kind`` None) delete the user's pusher for (app_id,
    pushkey). Unless ``append``, other users' pushers with the same pair are removed."""
    key = {"app_id": spec.app_id, "pushkey": spec.pushkey}
    with transaction.atomic():
        if spec.kind is None:
            Pusher.objects.filter(user=user, **key).delete()
            return
        fields = {
            "device": device,
            "kind": spec.kind,
            "app_display_name": spec.app_display_name,
            "device_display_name": spec.device_display_name,
            "profile_tag": spec.profile_tag,
            "lang": spec.lang,
            "data": spec.data,
        }
        Pusher.objects.update_or_create(
            user=user, **key, defaults=fields, create_defaults={**fields, "created_ts": now_ms()}
        )
        if not spec.append:
            Pusher.objects.filter(**key).exclude(user=user).delete()
