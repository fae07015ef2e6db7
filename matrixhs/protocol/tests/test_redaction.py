"""The redaction algorithm per room version."""

from __future__ import annotations

from typing import Any

import pytest

from matrixhs.protocol.power_levels import PowerLevels
from matrixhs.protocol.redaction import redact_event, redacted_event_id, should_apply_redaction
from matrixhs.protocol.room_versions import KNOWN_ROOM_VERSIONS

RV = KNOWN_ROOM_VERSIONS

FULL_EVENT: dict[str, Any] = {
    "event_id": "$e:example.com",
    "type": "m.room.message",
    "room_id": "!r:example.com",
    "sender": "@u:example.com",
    "state_key": "",
    "content": {"body": "secret"},
    "hashes": {"sha256": "abc"},
    "signatures": {"example.com": {"ed25519:1": "sig"}},
    "depth": 4,
    "prev_events": ["$p"],
    "auth_events": ["$a"],
    "origin_server_ts": 1234,
    "prev_state": [],
    "origin": "example.com",
    "membership": "join",
    "unsigned": {"age": 1},
    "redacts": "$x:example.com",
    "other": "dropped",
}
V11_KEYS = {
    "event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures",
    "depth", "prev_events", "auth_events", "origin_server_ts",
}  # fmt: skip


@pytest.mark.parametrize("version", [str(n) for n in range(1, 11)])
def test_top_level_keys_before_v11(version: str) -> None:
    redacted = redact_event(FULL_EVENT, RV[version])
    assert set(redacted) == V11_KEYS | {"prev_state", "origin", "membership"}
    assert redacted["content"] == {}


@pytest.mark.parametrize("version", ["11", "12"])
def test_top_level_keys_from_v11(version: str) -> None:
    redacted = redact_event(FULL_EVENT, RV[version])
    assert set(redacted) == V11_KEYS  # origin, membership, prev_state, unsigned, redacts go


def test_input_is_not_modified() -> None:
    event = dict(FULL_EVENT, content={"body": "x"})
    redact_event(event, RV["11"])
    assert event["content"] == {"body": "x"} and "unsigned" in event


MEMBER = {
    "membership": "join",
    "join_authorised_via_users_server": "@a:example.com",
    "displayname": "A",
    "third_party_invite": {"display_name": "a", "signed": {"mxid": "@a:x", "token": "t"}},
}
POWER_LEVELS = {
    "ban": 50, "events": {"m.room.name": 100}, "events_default": 0, "invite": 0, "kick": 50,
    "redact": 50, "state_default": 50, "users": {"@a:x": 100}, "users_default": 0,
    "notifications": {"room": 50}, "other": 1,
}  # fmt: skip

# (event type, content, room version, expected content)
CONTENT_CASES = [
    ("m.room.member", MEMBER, "8", {"membership": "join"}),
    (
        "m.room.member",
        MEMBER,
        "9",
        {"membership": "join", "join_authorised_via_users_server": "@a:example.com"},
    ),
    (
        "m.room.member",
        MEMBER,
        "11",
        {
            "membership": "join",
            "join_authorised_via_users_server": "@a:example.com",
            "third_party_invite": {"signed": {"mxid": "@a:x", "token": "t"}},
        },
    ),
    (
        "m.room.member",
        {"membership": "invite", "third_party_invite": {"x": 1}},
        "11",
        {"membership": "invite", "third_party_invite": {}},
    ),
    (
        "m.room.create",
        {"creator": "@a:x", "room_version": "1", "m.federate": False},
        "10",
        {"creator": "@a:x"},
    ),
    (
        "m.room.create",
        {"room_version": "11", "m.federate": False},
        "11",
        {"room_version": "11", "m.federate": False},
    ),
    (
        "m.room.create",
        {"additional_creators": ["@b:x"], "x": 1},
        "12",
        {"additional_creators": ["@b:x"], "x": 1},
    ),
    (
        "m.room.join_rules",
        {"join_rule": "restricted", "allow": [], "x": 1},
        "7",
        {"join_rule": "restricted"},
    ),
    (
        "m.room.join_rules",
        {"join_rule": "restricted", "allow": [], "x": 1},
        "8",
        {"join_rule": "restricted", "allow": []},
    ),
    (
        "m.room.power_levels",
        POWER_LEVELS,
        "10",
        {k: v for k, v in POWER_LEVELS.items() if k not in ("invite", "notifications", "other")},
    ),
    (
        "m.room.power_levels",
        POWER_LEVELS,
        "11",
        {k: v for k, v in POWER_LEVELS.items() if k not in ("notifications", "other")},
    ),
    ("m.room.aliases", {"aliases": ["#a:x"]}, "5", {"aliases": ["#a:x"]}),
    ("m.room.aliases", {"aliases": ["#a:x"]}, "6", {}),
    (
        "m.room.history_visibility",
        {"history_visibility": "shared", "x": 1},
        "1",
        {"history_visibility": "shared"},
    ),
    ("m.room.redaction", {"redacts": "$x", "reason": "spam"}, "10", {}),
    ("m.room.redaction", {"redacts": "$x", "reason": "spam"}, "11", {"redacts": "$x"}),
    ("m.room.topic", {"topic": "hello"}, "12", {}),
]


@pytest.mark.parametrize(("event_type", "content", "version", "expected"), CONTENT_CASES)
def test_content_kept_per_type_and_version(
    event_type: str, content: dict[str, Any], version: str, expected: dict[str, Any]
) -> None:
    event = dict(FULL_EVENT, type=event_type, content=content)
    assert redact_event(event, RV[version])["content"] == expected


def test_missing_content_becomes_empty_object() -> None:
    event = {k: v for k, v in FULL_EVENT.items() if k != "content"}
    assert redact_event(event, RV["11"])["content"] == {}


def test_redacted_event_id_moved_into_content_in_v11() -> None:
    redaction = {"type": "m.room.redaction", "redacts": "$top", "content": {"redacts": "$in"}}
    assert redacted_event_id(redaction, RV["10"]) == "$top"
    assert redacted_event_id(redaction, RV["11"]) == "$in"
    assert redacted_event_id({"content": {}}, RV["11"]) is None


@pytest.mark.parametrize("version", ["1", "10", "11", "12"])
def test_state_events_of_type_redaction_redact_nothing(version: str) -> None:
    state = {
        "type": "m.room.redaction",
        "state_key": "",
        "redacts": "$top",
        "content": {"redacts": "$in"},
    }
    assert redacted_event_id(state, RV[version]) is None
    assert redacted_event_id(dict(state, type="m.room.message"), RV[version]) is None


def test_redactions_apply_for_the_redact_level_or_the_same_server() -> None:
    create = {"type": "m.room.create", "sender": "@admin:a.example", "content": {}}
    levels = PowerLevels.from_content({"users": {"@mod:b.example": 50}}, create, RV["11"])
    original = {"sender": "@user:a.example"}

    def redaction(sender: str) -> dict[str, Any]:
        return {"type": "m.room.redaction", "sender": sender}

    assert should_apply_redaction(redaction("@mod:b.example"), original, levels)
    assert should_apply_redaction(redaction("@other:a.example"), original, levels)
    assert not should_apply_redaction(redaction("@nobody:c.example"), original, levels)
