"""Room versions as data: the feature matrix of the spec."""

from __future__ import annotations

import dataclasses
import re

import pytest

from matrixhs.protocol.room_versions import (
    DEFAULT_ROOM_VERSION,
    KNOWN_ROOM_VERSIONS,
    EventFormat,
    StateResolution,
    UnknownRoomVersion,
    get_room_version,
)


def versions_with(flag: str) -> list[str]:
    return [v for v, rv in KNOWN_ROOM_VERSIONS.items() if getattr(rv, flag)]


def test_versions_1_to_12_are_known_and_stable() -> None:
    assert list(KNOWN_ROOM_VERSIONS) == [str(n) for n in range(1, 13)]
    assert all(rv.stable for rv in KNOWN_ROOM_VERSIONS.values())
    for identifier, rv in KNOWN_ROOM_VERSIONS.items():
        assert rv.identifier == identifier
        assert re.fullmatch(r"[a-z0-9.\-]{1,32}", identifier)


def test_default_room_version_is_12() -> None:
    # Spec v1.19 rooms/_index.md: "Servers SHOULD use room version 12 as the default".
    assert DEFAULT_ROOM_VERSION == "12"
    assert DEFAULT_ROOM_VERSION in KNOWN_ROOM_VERSIONS


def test_feature_matrix_matches_the_spec() -> None:
    # rooms/_index.md "Feature matrix" and the per-version pages.
    assert versions_with("knock_join_rule") == ["7", "8", "9", "10", "11", "12"]
    assert versions_with("restricted_join_rule") == ["8", "9", "10", "11", "12"]
    assert versions_with("knock_restricted_join_rule") == ["10", "11", "12"]
    assert versions_with("privileged_creators") == ["12"]
    assert versions_with("room_id_from_create_event") == ["12"]
    assert versions_with("restricted_join_rule_fix") == ["9", "10", "11", "12"]
    assert versions_with("integer_only_power_levels") == ["10", "11", "12"]
    assert versions_with("updated_redaction_rules") == ["11", "12"]
    assert versions_with("implicit_room_creator") == ["11", "12"]
    assert versions_with("special_case_aliases_auth") == ["1", "2", "3", "4", "5"]
    assert versions_with("strict_canonical_json") == [str(n) for n in range(6, 13)]
    assert versions_with("enforce_key_validity") == [str(n) for n in range(5, 13)]
    assert versions_with("redaction_auth_rule") == ["1", "2"]


def test_event_formats_and_state_resolution() -> None:
    formats = {v: rv.event_format for v, rv in KNOWN_ROOM_VERSIONS.items()}
    assert formats["1"] is formats["2"] is EventFormat.V1
    assert formats["3"] is EventFormat.V3
    assert all(formats[str(n)] is EventFormat.V4 for n in range(4, 13))
    state_res = {v: rv.state_res for v, rv in KNOWN_ROOM_VERSIONS.items()}
    assert state_res["1"] is StateResolution.V1
    assert all(state_res[str(n)] is StateResolution.V2 for n in range(2, 12))
    assert state_res["12"] is StateResolution.V2_1


def test_room_versions_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        KNOWN_ROOM_VERSIONS["11"].stable = False  # type: ignore[misc]


def test_get_room_version() -> None:
    assert get_room_version("9") is KNOWN_ROOM_VERSIONS["9"]
    with pytest.raises(UnknownRoomVersion):
        get_room_version("org.example.custom")
