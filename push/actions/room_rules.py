"""A user's push rules for one room, copied to another (the room's successor after an
upgrade: rooms/actions/successor.py)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import User
from push.actions.rules import _lock_user, _publish
from push.models import PushRule


def copy_room_rules(user: User, old_room_id: str, new_room_id: str) -> int:
    """Copy the user's rules about ``old_room_id`` to ``new_room_id``: the ``room`` rule
    named after it, and override and underride rules with an ``event_match`` on its
    room ID (whose rule ID names the room, as clients make them). A rule the user
    already has under the new ID stays as it is. Each copy takes its original's place.
    Returns how many were copied."""
    with transaction.atomic():
        _lock_user(user)
        rules = list(PushRule.objects.filter(user=user).order_by("kind", "position", "pk"))
        existing = {(rule.kind, rule.rule_id) for rule in rules}
        copies = []
        for rule in rules:
            copied = _copied(rule, old_room_id, new_room_id)
            if copied is None or (rule.kind, copied[0]) in existing:
                continue
            rule_id, conditions = copied
            copies.append(
                PushRule(
                    user=user,
                    kind=rule.kind,
                    rule_id=rule_id,
                    position=rule.position,
                    conditions=conditions,
                    pattern=rule.pattern,
                    actions=rule.actions,
                    enabled=rule.enabled,
                )
            )
        if not copies:
            return 0
        PushRule.objects.bulk_create(copies)
        # Renumber each kind: a copy sits right after its original.
        for kind in {copy.kind for copy in copies}:
            ordered = PushRule.objects.filter(user=user, kind=kind).order_by("position", "pk")
            renumbered = list(ordered)
            for position, rule in enumerate(renumbered):
                rule.position = position
            PushRule.objects.bulk_update(renumbered, ["position"])
        _publish(user)
        return len(copies)


def _copied(
    rule: PushRule, old_room_id: str, new_room_id: str
) -> tuple[str, list[Any] | None] | None:
    if rule.kind == "room":
        return (new_room_id, rule.conditions) if rule.rule_id == old_room_id else None
    if rule.kind not in ("override", "underride") or old_room_id not in rule.rule_id:
        return None
    conditions = rule.conditions if isinstance(rule.conditions, list) else []
    if not any(_matches_room(c, old_room_id) for c in conditions):
        return None
    replaced = [
        {**c, "pattern": new_room_id} if _matches_room(c, old_room_id) else c for c in conditions
    ]
    return rule.rule_id.replace(old_room_id, new_room_id), replaced


def _matches_room(condition: Any, room_id: str) -> bool:
    return (
        isinstance(condition, dict)
        and condition.get("kind") == "event_match"
        and condition.get("key") == "room_id"
        and condition.get("pattern") == room_id
    )
