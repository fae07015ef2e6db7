"""check_pdu_format: step 1 of the checks on receipt of a PDU (malformed events are dropped)."""

from __future__ import annotations

from typing import Any

import pytest

from matrixhs.protocol.events import EventTooLarge, InvalidEvent, check_pdu_format
from matrixhs.protocol.room_versions import KNOWN_ROOM_VERSIONS
from matrixhs.protocol.signing import build_pdu, generate_signing_key

RV10, RV2, RV12 = KNOWN_ROOM_VERSIONS["10"], KNOWN_ROOM_VERSIONS["2"], KNOWN_ROOM_VERSIONS["12"]
KEY = generate_signing_key("k")


def pdu(rv: Any = RV10, **fields: Any) -> dict[str, Any]:
    partial = {
        "type": "m.room.message",
        "sender": "@a:x.example",
        "room_id": "!r:x.example",
        "content": {"body": "hi"},
        "prev_events": ["$p"],
        "auth_events": ["$a"],
        "depth": 3,
        "origin_server_ts": 1,
    }
    return build_pdu({**partial, **fields}, "x.example", KEY, rv)[1]


def test_a_well_formed_event_passes() -> None:
    check_pdu_format(pdu(), RV10)
    check_pdu_format(pdu(RV2), RV2)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("type", 5),
        ("sender", "not-a-user"),
        ("room_id", None),
        ("content", []),
        ("state_key", 7),
        ("depth", -1),
        ("depth", 2**60),
        ("depth", True),
        ("origin_server_ts", "1"),
        ("prev_events", "$p"),
        ("prev_events", [["$p", {}]]),
        ("prev_events", [f"$p{i}" for i in range(21)]),
        ("auth_events", [f"$a{i}" for i in range(11)]),
        ("auth_events", [5]),
        ("hashes", {}),
        ("signatures", []),
        ("redacts", 1),
    ],
)
def test_malformed_fields_are_refused(field: str, value: Any) -> None:
    event = pdu()
    if value is None:
        event.pop(field)
    else:
        event[field] = value
    with pytest.raises(InvalidEvent):
        check_pdu_format(event, RV10)


def test_v1_format_needs_pairs_and_an_event_id() -> None:
    event = pdu(RV2)
    event["prev_events"] = ["$p:x.example"]
    with pytest.raises(InvalidEvent):
        check_pdu_format(event, RV2)
    event = pdu(RV2)
    del event["event_id"]
    with pytest.raises(InvalidEvent):
        check_pdu_format(event, RV2)


def test_v12_create_events_carry_no_room_id() -> None:
    partial = {
        "type": "m.room.create",
        "state_key": "",
        "sender": "@a:x.example",
        "content": {},
        "prev_events": [],
        "auth_events": [],
        "depth": 1,
        "origin_server_ts": 1,
    }
    create = build_pdu(partial, "x.example", KEY, RV12)[1]
    check_pdu_format(create, RV12)
    create["room_id"] = "!r:x.example"
    with pytest.raises(InvalidEvent):
        check_pdu_format(create, RV12)


def test_size_and_canonical_json_limits() -> None:
    big = pdu()
    big["content"] = {"body": "x" * 70000}
    with pytest.raises(EventTooLarge):
        check_pdu_format(big, RV10)
    floats = pdu()
    floats["content"] = {"n": 1.5}
    with pytest.raises(InvalidEvent):
        check_pdu_format(floats, RV10)
