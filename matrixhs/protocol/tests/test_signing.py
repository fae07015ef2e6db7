"""Signing: the appendix "Cryptographic Test Vectors", event signatures and PDU building."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from matrixhs.protocol.canonical_json import InvalidCanonicalJson
from matrixhs.protocol.events import EventTooLarge, InvalidEvent
from matrixhs.protocol.hashing import check_content_hash, compute_event_id
from matrixhs.protocol.redaction import redact_event
from matrixhs.protocol.room_versions import KNOWN_ROOM_VERSIONS
from matrixhs.protocol.signing import (
    InvalidSignature,
    MemoryServerKeys,
    build_pdu,
    decode_signing_key,
    decode_verify_key,
    encode_signing_key,
    encode_verify_key,
    generate_signing_key,
    key_id,
    required_signature_servers,
    sign_event,
    sign_json,
    signed_with_any_key,
    verify_event_signature,
    verify_event_signed_by,
    verify_json,
    verify_key_of,
)
from matrixhs.protocol.tests.roombuilder import SEED
from matrixhs.protocol.tests.test_hashing import MESSAGE_EVENT, MINIMAL_EVENT

RV = KNOWN_ROOM_VERSIONS
KEY = decode_signing_key("ed25519:1", SEED)
VERIFY_KEY = verify_key_of(KEY)

# Signatures published in the appendix "Cryptographic Test Vectors".
SIG_EMPTY = "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
SIG_ONE_TWO = (
    "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
)
SIG_MINIMAL_EVENT = (
    "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
)
SIG_MESSAGE_EVENT = (
    "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"
)


def test_signing_key_from_appendix_seed() -> None:
    assert key_id(KEY) == "ed25519:1"
    # The seed's last base64 digit carries 2 unused bits: re-encoding gives "...XA0".
    assert encode_signing_key(KEY) == SEED[:-1] + "0"
    assert bytes(decode_signing_key("ed25519:1", encode_signing_key(KEY))) == bytes(KEY)
    assert key_id(VERIFY_KEY) == "ed25519:1"
    # The public key of this seed, as other implementations' docs publish it.
    assert encode_verify_key(VERIFY_KEY) == "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI"


def test_sign_empty_object_appendix_vector() -> None:
    assert sign_json({}, "domain", KEY) == {"signatures": {"domain": {"ed25519:1": SIG_EMPTY}}}


def test_sign_object_with_data_appendix_vector() -> None:
    assert sign_json({"one": 1, "two": "Two"}, "domain", KEY) == {
        "one": 1,
        "signatures": {"domain": {"ed25519:1": SIG_ONE_TWO}},
        "two": "Two",
    }


def test_sign_json_keeps_unsigned_and_other_signatures_without_mutating() -> None:
    original = {"a": 1, "unsigned": {"age": 3}, "signatures": {"other": {"ed25519:x": "s"}}}
    snapshot = copy.deepcopy(original)
    signed = sign_json(original, "domain", KEY)
    assert original == snapshot
    assert signed["unsigned"] == {"age": 3}
    assert set(signed["signatures"]) == {"other", "domain"}
    verify_json(signed, "domain", VERIFY_KEY)


def test_verify_json_detects_tampering_and_missing_signatures() -> None:
    signed = sign_json({"one": 1}, "domain", KEY)
    verify_json(dict(signed, unsigned={"ignored": True}), "domain", VERIFY_KEY)
    with pytest.raises(InvalidSignature):
        verify_json(dict(signed, one=2), "domain", VERIFY_KEY)
    with pytest.raises(InvalidSignature):
        verify_json(signed, "other.server", VERIFY_KEY)
    with pytest.raises(InvalidSignature):
        verify_json({"one": 1}, "domain", VERIFY_KEY)
    other_key = verify_key_of(generate_signing_key("1"))
    with pytest.raises(InvalidSignature):
        verify_json(signed, "domain", other_key)


def test_sign_json_rejects_floats_when_strict() -> None:
    with pytest.raises(InvalidCanonicalJson):
        sign_json({"a": 1.5}, "domain", KEY)
    sign_json({"a": 1.5}, "domain", KEY, strict=False)


def test_minimal_event_signing_appendix_vector() -> None:
    signed = sign_event(MINIMAL_EVENT, "domain", KEY, RV["1"])
    assert signed == {
        "auth_events": [],
        "content": {},
        "depth": 3,
        "hashes": {"sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},
        "origin": "domain",
        "origin_server_ts": 1000000,
        "prev_events": [],
        "room_id": "!x:domain",
        "sender": "@a:domain",
        "signatures": {"domain": {"ed25519:1": SIG_MINIMAL_EVENT}},
        "type": "X",
        "unsigned": {"age_ts": 1000000},
    }


def test_redactable_event_signing_appendix_vector() -> None:
    signed = sign_event(MESSAGE_EVENT, "domain", KEY, RV["1"])
    assert signed["hashes"] == {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"}
    assert signed["signatures"] == {"domain": {"ed25519:1": SIG_MESSAGE_EVENT}}
    assert signed["content"] == MESSAGE_EVENT["content"]
    assert signed["unsigned"] == {"age_ts": 1000000}


@pytest.mark.parametrize("version", ["1", "6", "11", "12"])
def test_event_signature_verifies_for_full_and_redacted_copies(version: str) -> None:
    signed = sign_event(MESSAGE_EVENT, "domain", KEY, RV[version])
    verify_event_signature(signed, "domain", VERIFY_KEY, RV[version])
    verify_event_signature(redact_event(signed, RV[version]), "domain", VERIFY_KEY, RV[version])
    # Changing content does not break the signature (it covers the redacted form) but
    # breaks the content hash; changing an essential key breaks the signature.
    changed = dict(signed, content={"body": "forged"})
    verify_event_signature(changed, "domain", VERIFY_KEY, RV[version])
    assert not check_content_hash(changed, RV[version])
    with pytest.raises(InvalidSignature):
        verify_event_signature(dict(signed, sender="@x:domain"), "domain", VERIFY_KEY, RV[version])


def _domain_keys(valid_until_ts: int | None = None) -> MemoryServerKeys:
    keys = MemoryServerKeys()
    keys.add("domain", VERIFY_KEY, valid_until_ts)
    return keys


@pytest.mark.parametrize("version", ["1", "6", "11", "12"])
def test_verify_event_signed_by_accepts_a_valid_signature(version: str) -> None:
    signed = sign_event(MESSAGE_EVENT, "domain", KEY, RV[version])
    verify_event_signed_by(signed, "domain", _domain_keys(), RV[version])
    # Another server's signature next to it does not matter.
    both = sign_event(signed, "other.example", generate_signing_key("x"), RV[version])
    verify_event_signed_by(both, "domain", _domain_keys(), RV[version])


@pytest.mark.parametrize("version", ["1", "11"])
def test_verify_event_signed_by_rejects_missing_and_forged_signatures(version: str) -> None:
    rv = RV[version]
    signed = sign_event(MESSAGE_EVENT, "domain", KEY, rv)
    with pytest.raises(InvalidSignature, match="not signed by domain"):
        verify_event_signed_by(dict(signed, signatures={}), "domain", _domain_keys(), rv)
    with pytest.raises(InvalidSignature, match="not signed by other"):
        verify_event_signed_by(signed, "other.example", _domain_keys(), rv)
    # The same key ID with another key: a forgery.
    forged = sign_event(MESSAGE_EVENT, "domain", generate_signing_key("1"), rv)
    with pytest.raises(InvalidSignature):
        verify_event_signed_by(forged, "domain", _domain_keys(), rv)
    # A real signature of domain, moved onto another event.
    moved = dict(sign_event(MINIMAL_EVENT, "domain", KEY, rv), signatures=signed["signatures"])
    with pytest.raises(InvalidSignature):
        verify_event_signed_by(moved, "domain", _domain_keys(), rv)
    # Garbage, and key IDs that are not Ed25519 or that the store does not know.
    for sigs in ({"ed25519:1": "AAAA"}, {"ed25519:1": 5}, {"rsa:1": "AAAA"}, {"ed25519:2": ""}):
        with pytest.raises(InvalidSignature):
            verify_event_signed_by(
                dict(signed, signatures={"domain": sigs}), "domain", _domain_keys(), rv
            )
    with pytest.raises(InvalidSignature):
        verify_event_signed_by(signed, "domain", MemoryServerKeys(), rv)


def test_verify_event_signed_by_honours_key_validity_from_v5() -> None:
    ts = MESSAGE_EVENT["origin_server_ts"]
    for version in ("5", "11"):
        signed = sign_event(MESSAGE_EVENT, "domain", KEY, RV[version])
        verify_event_signed_by(signed, "domain", _domain_keys(ts), RV[version])
        with pytest.raises(InvalidSignature):
            verify_event_signed_by(signed, "domain", _domain_keys(ts - 1), RV[version])
    signed = sign_event(MESSAGE_EVENT, "domain", KEY, RV["4"])
    verify_event_signed_by(signed, "domain", _domain_keys(ts - 1), RV["4"])


def test_resigning_keeps_existing_signatures() -> None:
    first = sign_event(MESSAGE_EVENT, "domain", KEY, RV["11"])
    other = generate_signing_key("abc")
    both = sign_event(first, "resident.example", other, RV["11"])
    assert set(both["signatures"]) == {"domain", "resident.example"}
    assert both["hashes"] == first["hashes"]
    verify_event_signature(both, "domain", VERIFY_KEY, RV["11"])
    verify_event_signature(both, "resident.example", verify_key_of(other), RV["11"])


def test_decode_keys_reject_garbage() -> None:
    with pytest.raises(ValueError):
        decode_signing_key("rsa:1", SEED)
    with pytest.raises(ValueError):
        decode_signing_key("ed25519:1", "AAAA")
    with pytest.raises(ValueError):
        decode_verify_key("ed25519:1", "not base64!")
    assert encode_verify_key(decode_verify_key("ed25519:1", encode_verify_key(VERIFY_KEY))) == (
        encode_verify_key(VERIFY_KEY)
    )


def test_signed_with_any_key() -> None:
    identity_key = generate_signing_key("0")
    signed = sign_json({"mxid": "@a:x", "token": "t"}, "id.example", identity_key)
    public = encode_verify_key(verify_key_of(identity_key))
    assert signed_with_any_key(signed, [encode_verify_key(VERIFY_KEY), public])
    assert not signed_with_any_key(signed, [encode_verify_key(VERIFY_KEY)])
    assert not signed_with_any_key(dict(signed, token="u"), [public])
    assert not signed_with_any_key({"mxid": "@a:x"}, [public])


def _member(membership: str, **content: Any) -> dict[str, Any]:
    return {
        "type": "m.room.member",
        "sender": "@alice:a.example",
        "state_key": "@bob:b.example",
        "event_id": "$ev:c.example",
        "content": {"membership": membership, **content},
    }


def test_required_signature_servers() -> None:
    assert required_signature_servers(_member("join"), RV["11"]) == {"a.example"}
    # v1/v2: the event ID's server too.
    assert required_signature_servers(_member("join"), RV["2"]) == {"a.example", "c.example"}
    # Restricted joins need the authorising server (v8+ only).
    restricted = _member("join", join_authorised_via_users_server="@mod:d.example")
    assert required_signature_servers(restricted, RV["8"]) == {"a.example", "d.example"}
    assert required_signature_servers(restricted, RV["7"]) == {"a.example"}
    # Invites from third-party invites need no sender signature.
    third_party = _member("invite", third_party_invite={"signed": {}})
    assert required_signature_servers(third_party, RV["11"]) == set()


def _partial(**fields: Any) -> dict[str, Any]:
    partial: dict[str, Any] = {
        "type": "m.room.message",
        "sender": "@u:example.com",
        "room_id": "!r:example.com",
        "content": {"body": "hi"},
        "prev_events": ["$p1:example.com"],
        "auth_events": ["$a1:example.com", "$a2:example.com"],
        "depth": 5,
        "origin_server_ts": 1234,
    }
    partial.update(fields)
    return partial


def test_build_pdu_v4_plus() -> None:
    event_id, pdu = build_pdu(_partial(), "example.com", KEY, RV["11"])
    assert event_id == compute_event_id(pdu, RV["11"])
    assert event_id.startswith("$") and ":" not in event_id and "event_id" not in pdu
    assert pdu["prev_events"] == ["$p1:example.com"]
    assert check_content_hash(pdu, RV["11"])
    verify_event_signature(pdu, "example.com", VERIFY_KEY, RV["11"])


def test_build_pdu_v1_uses_pairs_and_domain_event_ids() -> None:
    event_id, pdu = build_pdu(_partial(), "example.com", KEY, RV["1"])
    assert event_id == pdu["event_id"] and event_id.endswith(":example.com")
    assert pdu["auth_events"] == [["$a1:example.com", {}], ["$a2:example.com", {}]]
    assert pdu["prev_events"] == [["$p1:example.com", {}]]
    fixed_id, _ = build_pdu(_partial(event_id="$fixed:example.com"), "example.com", KEY, RV["1"])
    assert fixed_id == "$fixed:example.com"


def test_build_pdu_moves_redacts_into_content_from_v11() -> None:
    partial = _partial(type="m.room.redaction", content={}, redacts="$x")
    _, v10 = build_pdu(partial, "example.com", KEY, RV["10"])
    _, v11 = build_pdu(partial, "example.com", KEY, RV["11"])
    assert v10["redacts"] == "$x" and "redacts" not in v10["content"]
    assert v11["content"]["redacts"] == "$x" and "redacts" not in v11


def test_build_pdu_v12_create_has_no_room_id() -> None:
    create = _partial(type="m.room.create", state_key="", content={"room_version": "12"})
    with pytest.raises(InvalidEvent):
        build_pdu(create, "example.com", KEY, RV["12"])
    del create["room_id"]
    event_id, pdu = build_pdu(create, "example.com", KEY, RV["12"])
    assert "room_id" not in pdu and event_id.startswith("$")


def test_build_pdu_checks_fields_and_size() -> None:
    with pytest.raises(InvalidEvent):
        build_pdu({"type": "m.room.message"}, "example.com", KEY, RV["11"])
    with pytest.raises(InvalidEvent):
        build_pdu(_partial(room_id=None), "example.com", KEY, RV["11"])
    with pytest.raises(EventTooLarge):
        build_pdu(_partial(content={"body": "x" * 70000}), "example.com", KEY, RV["11"])
    with pytest.raises(InvalidCanonicalJson):
        build_pdu(_partial(content={"n": 0.5}), "example.com", KEY, RV["11"])
