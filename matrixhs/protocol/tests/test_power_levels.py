"""Reading power levels: defaults, creators, string and float forms."""

from __future__ import annotations

from typing import Any

import pytest

from matrixhs.protocol.power_levels import (
    CREATOR_POWER_LEVEL,
    PowerLevels,
    get_creators,
    get_power_level,
    get_required_level,
    parse_power_level,
)
from matrixhs.protocol.room_versions import KNOWN_ROOM_VERSIONS

RV = KNOWN_ROOM_VERSIONS
ALICE, BOB, CAROL = "@alice:x.example", "@bob:x.example", "@carol:x.example"


def create(version: str, **content: Any) -> dict[str, Any]:
    return {"type": "m.room.create", "sender": ALICE, "state_key": "", "content": content}


@pytest.mark.parametrize(
    ("value", "version", "expected"),
    [
        (50, "10", 50),
        (-3, "10", -3),
        (True, "1", None),
        ("50", "9", 50),
        (" +100 ", "9", 100),
        ("-007", "1", -7),
        ("50", "10", None),
        ("1e3", "9", None),
        ("1_000", "9", None),
        ("5.0", "9", None),
        ("", "9", None),
        ("--5", "9", None),
        ("+-5", "9", None),
        ("\u0663", "9", None),  # ARABIC-INDIC DIGIT THREE: base 10 means ASCII digits
        (50.57, "5", 50),
        (-50.57, "1", -50),
        (50.5, "6", None),
        (float("inf"), "1", None),
        (None, "1", None),
        ([50], "1", None),
    ],
)
def test_parse_power_level(value: object, version: str, expected: int | None) -> None:
    assert parse_power_level(value, RV[version]) == expected


def test_creators_per_version() -> None:
    event = create("10", creator=BOB, additional_creators=[CAROL, 5])
    assert get_creators(event, RV["10"]) == {BOB}
    assert get_creators(event, RV["11"]) == {ALICE}
    assert get_creators(event, RV["12"]) == {ALICE, CAROL}
    assert get_creators(None, RV["12"]) == frozenset()


@pytest.mark.parametrize(("version", "creator"), [("10", BOB), ("11", ALICE)])
def test_without_power_levels_the_creator_has_100(version: str, creator: str) -> None:
    event = create(version, creator=BOB)
    assert get_power_level(creator, None, event, RV[version]) == 100
    other = ALICE if creator == BOB else BOB
    assert get_power_level(other, None, event, RV[version]) == 0


def test_with_power_levels_users_and_users_default_apply() -> None:
    content = {"users": {BOB: 75}, "users_default": 10}
    event = create("11")
    assert get_power_level(BOB, content, event, RV["11"]) == 75
    assert get_power_level(ALICE, content, event, RV["11"]) == 10  # creator: no special case
    assert get_power_level(ALICE, content, event, RV["12"]) == CREATOR_POWER_LEVEL
    assert get_power_level(CAROL, {}, event, RV["11"]) == 0


def test_required_levels_and_defaults() -> None:
    empty: dict[str, Any] = {}
    for content in (None, empty):
        assert get_required_level("m.room.message", None, content, RV["11"]) == 0
        assert get_required_level("m.room.topic", "", content, RV["11"]) == 50
    content = {"events": {"m.room.topic": 5, "m.custom": 90}, "events_default": 20,
               "state_default": 30}  # fmt: skip
    assert get_required_level("m.room.topic", "", content, RV["11"]) == 5
    assert get_required_level("m.custom", None, content, RV["11"]) == 90
    assert get_required_level("m.room.message", None, content, RV["11"]) == 20
    assert get_required_level("m.room.name", "", content, RV["11"]) == 30
    assert get_required_level("m.room.name", "", {"state_default": "7"}, RV["9"]) == 7
    assert get_required_level("m.room.name", "", {"state_default": "7"}, RV["10"]) == 50


def test_named_and_notification_levels() -> None:
    default = PowerLevels.from_content({}, None, RV["11"])
    assert {name: default.named_level(name) for name in ("ban", "kick", "redact", "invite")} == {
        "ban": 50, "kick": 50, "redact": 50, "invite": 0
    }  # fmt: skip
    assert default.notification_level("room") == 50
    assert default.notification_level("other") is None
    custom = PowerLevels.from_content({"invite": 25, "notifications": {"room": 0}}, None, RV["11"])
    assert custom.named_level("invite") == 25
    assert custom.notification_level("room") == 0
