"""Content hashes, reference hashes, event IDs and v12 room IDs."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from matrixhs.protocol.canonical_json import InvalidCanonicalJson
from matrixhs.protocol.events import InvalidEvent
from matrixhs.protocol.hashing import (
    add_content_hash,
    check_content_hash,
    compute_content_hash,
    compute_event_id,
    compute_reference_hash,
    compute_room_id,
)
from matrixhs.protocol.room_versions import KNOWN_ROOM_VERSIONS

V1, V3, V4, V6, V11, V12 = (KNOWN_ROOM_VERSIONS[v] for v in ("1", "3", "4", "6", "11", "12"))

# The appendix "Event Signing" events, with the content hashes the appendix publishes.
MINIMAL_EVENT: dict[str, Any] = {
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "signatures": {},
    "hashes": {},
    "type": "X",
    "content": {},
    "prev_events": [],
    "auth_events": [],
    "depth": 3,
    "unsigned": {"age_ts": 1000000},
}
MESSAGE_EVENT: dict[str, Any] = {
    "content": {"body": "Here is the message content"},
    "event_id": "$0:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {},
    "unsigned": {"age_ts": 1000000},
}


def b64(data: bytes, urlsafe: bool = False) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(data).decode().rstrip("=")


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (MINIMAL_EVENT, "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"),
        (MESSAGE_EVENT, "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"),
    ],
)
def test_content_hash_matches_appendix(event: dict[str, Any], expected: str) -> None:
    assert b64(compute_content_hash(event, V1)) == expected
    hashed = add_content_hash(event, V1)
    assert hashed["hashes"] == {"sha256": expected}
    assert check_content_hash(hashed, V1)
    assert "hashes" not in event or event["hashes"] == {}  # input untouched


def test_content_hash_ignores_unsigned_signatures_and_hashes() -> None:
    changed = dict(MESSAGE_EVENT, unsigned={"age": 5}, signatures={"x": {}}, hashes={"a": "b"})
    assert compute_content_hash(changed, V1) == compute_content_hash(MESSAGE_EVENT, V1)


def test_content_hash_mismatch_is_detected() -> None:
    hashed = add_content_hash(MESSAGE_EVENT, V1)
    tampered = dict(hashed, content={"body": "something else"})
    assert not check_content_hash(tampered, V1)
    assert not check_content_hash(dict(hashed, hashes={"sha256": "!!not base64"}), V1)
    assert not check_content_hash(dict(hashed, hashes={}), V1)


def test_add_content_hash_keeps_other_algorithms() -> None:
    hashed = add_content_hash(dict(MESSAGE_EVENT, hashes={"sha512": "x"}), V1)
    assert set(hashed["hashes"]) == {"sha256", "sha512"}


def _spec_reference_hash(event: dict[str, Any], keep: set[str]) -> bytes:
    # The spec's steps written out independently: redact (here: a message event, so only
    # top-level keys matter and content empties), drop signatures and unsigned, canonical
    # JSON, SHA-256.
    redacted = {k: v for k, v in event.items() if k in keep}
    redacted["content"] = {}
    redacted.pop("signatures", None)
    encoded = json.dumps(redacted, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).digest()


def test_reference_hash_follows_the_spec_steps() -> None:
    event = add_content_hash(dict(MESSAGE_EVENT, prev_events=[], auth_events=[], depth=1), V4)
    event.pop("event_id")
    before_v11 = {
        "type",
        "room_id",
        "sender",
        "content",
        "hashes",
        "signatures",
        "depth",
        "prev_events",
        "auth_events",
        "origin",
        "origin_server_ts",
    }
    assert compute_reference_hash(event, V4) == _spec_reference_hash(event, before_v11)
    # v11 no longer keeps `origin`, so the reference hash changes.
    assert compute_reference_hash(event, V11) == _spec_reference_hash(
        event, before_v11 - {"origin"}
    )
    assert compute_reference_hash(event, V11) != compute_reference_hash(event, V4)


def test_event_id_formats() -> None:
    event = add_content_hash(dict(MESSAGE_EVENT, prev_events=[], auth_events=[], depth=1), V4)
    event.pop("event_id")
    digest = compute_reference_hash(event, V4)
    assert compute_event_id(event, V3) == "$" + b64(digest)
    assert compute_event_id(event, V4) == "$" + b64(digest, urlsafe=True)
    assert len(compute_event_id(event, V4)) == 44


def test_event_id_is_stable_under_redaction_and_unsigned_changes() -> None:
    event = add_content_hash(dict(MESSAGE_EVENT, prev_events=[], auth_events=[], depth=1), V6)
    event.pop("event_id")
    event_id = compute_event_id(event, V6)
    assert compute_event_id(dict(event, unsigned={"age": 1}), V6) == event_id
    assert compute_event_id(dict(event, signatures={"a": {"b": "c"}}), V6) == event_id
    assert compute_event_id(dict(event, content={}), V6) == event_id  # redacted copy
    assert compute_event_id(dict(event, origin_server_ts=1), V6) != event_id


def test_v1_event_ids_are_carried_by_the_event() -> None:
    assert compute_event_id(MESSAGE_EVENT, V1) == "$0:domain"
    with pytest.raises(InvalidEvent):
        compute_event_id(MINIMAL_EVENT, V1)


def test_strict_room_versions_reject_floats_when_hashing() -> None:
    event = dict(MESSAGE_EVENT, content={"n": 1.5})
    compute_content_hash(event, V1)  # v1-v5 tolerate floats
    with pytest.raises(InvalidCanonicalJson):
        compute_content_hash(event, V6)


def test_v12_room_id_is_the_create_event_id_with_a_bang() -> None:
    create = add_content_hash(
        {
            "type": "m.room.create",
            "state_key": "",
            "sender": "@alice:example.com",
            "content": {"room_version": "12"},
            "prev_events": [],
            "auth_events": [],
            "depth": 1,
            "origin_server_ts": 1,
        },
        V12,
    )
    event_id = compute_event_id(create, V12)
    assert compute_room_id(create, V12) == "!" + event_id[1:]
    with pytest.raises(InvalidEvent):
        compute_room_id(create, V11)
    with pytest.raises(InvalidEvent):
        compute_room_id(dict(create, type="m.room.message"), V12)
