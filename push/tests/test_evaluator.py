"""The push rule evaluator on the spec's condition examples, without a database."""

from __future__ import annotations

from typing import Any
from unittest import TestCase

from push.evaluator import (
    EventFacts,
    Member,
    compile_condition,
    compile_ruleset,
    evaluate,
    flatten,
    outcome_of,
)
from push.rules import default_rules

ALICE = "@alice:example.org"


def facts(event: dict[str, Any], members: int = 3, power: float = 0) -> EventFacts:
    return EventFacts.of(event, members, power, {"room": 50})


def holds(
    condition: dict[str, Any], event: dict[str, Any], name: str | None = None, **kw: Any
) -> bool:
    compiled = compile_condition(condition)
    return compiled is not None and compiled.test(facts(event, **kw), Member(ALICE, name))


MESSAGE = {
    "type": "m.room.message",
    "room_id": "!room:example.org",
    "sender": "@bob:example.org",
    "content": {"msgtype": "m.text", "body": "Hello Alice, how are you?"},
}


class FlattenTests(TestCase):
    def test_dots_and_backslashes_in_keys_are_escaped(self) -> None:
        # The spec's example of flattening.
        event = {"content": {"m.relates_to": {"rel_type": "m.thread"}, "\\x": {"y": 1}}}
        self.assertEqual(
            flatten(event),
            {"content.m\\.relates_to.rel_type": "m.thread", "content.\\\\x.y": 1},
        )


class EventMatchTests(TestCase):
    def test_globs_match_the_whole_value_case_insensitively(self) -> None:
        condition = {"kind": "event_match", "key": "type", "pattern": "M.ROOM.*"}
        self.assertTrue(holds(condition, MESSAGE))
        self.assertFalse(holds({**condition, "pattern": "m.room"}, MESSAGE))
        self.assertTrue(holds({**condition, "pattern": "m.room.messag?"}, MESSAGE))

    def test_a_non_string_value_never_matches(self) -> None:
        event = {"content": {"n": 3}}
        self.assertFalse(holds({"kind": "event_match", "key": "content.n", "pattern": "*"}, event))

    def test_content_body_matches_on_word_boundaries(self) -> None:
        condition = {"kind": "event_match", "key": "content.body", "pattern": "alice"}
        self.assertTrue(holds(condition, MESSAGE))
        self.assertFalse(holds({**condition, "pattern": "lic"}, MESSAGE))
        self.assertTrue(holds({**condition, "pattern": "al*e"}, MESSAGE))

    def test_pathological_glob_is_fast(self) -> None:
        event = {"content": {"x": "a" * 5000}}
        pattern = "*a" * 50 + "b"
        self.assertFalse(
            holds({"kind": "event_match", "key": "content.x", "pattern": pattern}, event)
        )


class PropertyTests(TestCase):
    def test_property_is_compares_exact_scalars(self) -> None:
        event = {"content": {"m.mentions": {"room": True}, "n": 1}}
        key = "content.m\\.mentions.room"
        self.assertTrue(holds({"kind": "event_property_is", "key": key, "value": True}, event))
        self.assertFalse(holds({"kind": "event_property_is", "key": key, "value": 1}, event))
        self.assertFalse(
            holds({"kind": "event_property_is", "key": "content.n", "value": True}, event)
        )
        self.assertTrue(holds({"kind": "event_property_is", "key": "content.n", "value": 1}, event))

    def test_property_is_null_needs_the_key_present(self) -> None:
        condition = {"kind": "event_property_is", "key": "content.x", "value": None}
        self.assertTrue(holds(condition, {"content": {"x": None}}))
        self.assertFalse(holds(condition, {"content": {}}))

    def test_property_contains_looks_into_arrays(self) -> None:
        event = {"content": {"m.mentions": {"user_ids": [ALICE]}}}
        condition = {
            "kind": "event_property_contains",
            "key": "content.m\\.mentions.user_ids",
            "value": ALICE,
        }
        self.assertTrue(holds(condition, event))
        self.assertFalse(holds({**condition, "value": "@bob:example.org"}, event))
        self.assertFalse(holds(condition, {"content": {"m.mentions": {"user_ids": ALICE}}}))


class OtherConditionTests(TestCase):
    def test_room_member_count_operators(self) -> None:
        cases = {"2": False, "==3": True, "<4": True, ">3": False, "<=3": True, ">=4": False}
        for is_, expected in cases.items():
            with self.subTest(is_=is_):
                self.assertEqual(
                    holds({"kind": "room_member_count", "is": is_}, MESSAGE, members=3), expected
                )

    def test_malformed_member_count_never_matches(self) -> None:
        self.assertIsNone(compile_condition({"kind": "room_member_count", "is": "=3"}))

    def test_sender_notification_permission(self) -> None:
        condition = {"kind": "sender_notification_permission", "key": "room"}
        self.assertTrue(holds(condition, MESSAGE, power=50))
        self.assertFalse(holds(condition, MESSAGE, power=49))
        self.assertFalse(holds({**condition, "key": "other"}, MESSAGE, power=100))

    def test_contains_display_name(self) -> None:
        condition = {"kind": "contains_display_name"}
        self.assertTrue(holds(condition, MESSAGE, name="Alice"))
        self.assertFalse(holds(condition, MESSAGE, name="Ali"))
        self.assertFalse(holds(condition, MESSAGE, name=None))

    def test_unknown_kind_never_matches(self) -> None:
        self.assertIsNone(compile_condition({"kind": "org.example.custom"}))


class DefaultRulesTests(TestCase):
    rules = compile_ruleset({"global": default_rules(ALICE)}, ALICE)

    def outcome(self, event: dict[str, Any], members: int = 3) -> Any:
        return outcome_of(evaluate(self.rules, facts(event, members), Member(ALICE, "Alice")))

    def test_message_notifies_without_highlight(self) -> None:
        outcome = self.outcome(MESSAGE)
        self.assertEqual((outcome.notify, outcome.highlight), (True, False))

    def test_mention_highlights_with_sound(self) -> None:
        content = {**MESSAGE["content"], "m.mentions": {"user_ids": [ALICE]}}
        outcome = self.outcome({**MESSAGE, "content": content})
        self.assertEqual((outcome.notify, outcome.highlight), (True, True))
        self.assertIn({"set_tweak": "sound", "value": "default"}, outcome.actions)

    def test_edit_does_not_notify(self) -> None:
        # An edit mentions at top level only the users it newly mentions (spec).
        content = {
            "body": "* hi Alice",
            "m.mentions": {},
            "m.new_content": {"body": "hi Alice", "m.mentions": {"user_ids": [ALICE]}},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$x"},
        }
        self.assertFalse(self.outcome({**MESSAGE, "content": content}).notify)

    def test_notice_does_not_notify(self) -> None:
        content = {"msgtype": "m.notice", "body": "bot"}
        self.assertFalse(self.outcome({**MESSAGE, "content": content}).notify)

    def test_one_to_one_rings(self) -> None:
        self.assertIn({"set_tweak": "sound", "value": "default"}, self.outcome(MESSAGE, 2).actions)

    def test_disabled_master_rule_is_skipped(self) -> None:
        self.assertNotIn(".m.rule.master", [r.rule_id for r in self.rules.rules])


class SharingTests(TestCase):
    def test_default_rulesets_of_different_users_are_one(self) -> None:
        bob = "@bob:example.org"
        self.assertIs(
            compile_ruleset({"global": default_rules(ALICE)}, ALICE),
            compile_ruleset({"global": default_rules(bob)}, bob),
        )

    def test_shared_walk_still_tells_members_apart(self) -> None:
        bob = "@bob:example.org"
        rules = compile_ruleset({"global": default_rules(ALICE)}, ALICE)
        content = {"body": "hi", "msgtype": "m.text", "m.mentions": {"user_ids": [ALICE]}}
        shared = facts({**MESSAGE, "content": content})
        alice = outcome_of(evaluate(rules, shared, Member(ALICE)))
        other = outcome_of(evaluate(rules, shared, Member(bob)))
        self.assertEqual((alice.highlight, other.highlight), (True, False))
        self.assertTrue(other.notify)

    def test_display_name_is_personal(self) -> None:
        ruleset = {
            "global": {
                "override": [
                    {
                        "rule_id": "name",
                        "enabled": True,
                        "conditions": [{"kind": "contains_display_name"}],
                        "actions": ["notify", {"set_tweak": "highlight"}],
                    }
                ]
            }
        }
        rules = compile_ruleset(ruleset, ALICE)
        shared = facts(MESSAGE)
        self.assertTrue(outcome_of(evaluate(rules, shared, Member(ALICE, "Alice"))).highlight)
        self.assertIsNone(evaluate(rules, shared, Member(ALICE, "Carol")))
