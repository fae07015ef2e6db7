"""Canonical JSON: the spec appendix examples and the number rules."""

from __future__ import annotations

import pytest

from matrixhs.protocol.canonical_json import (
    MAX_SAFE_INTEGER,
    InvalidCanonicalJson,
    InvalidJson,
    encode_canonical_json,
    parse_json,
)

# (input JSON text, canonical output) from the appendix "Canonical JSON" examples.
APPENDIX_EXAMPLES = [
    ("{}", "{}"),
    ('{\n    "one": 1,\n    "two": "Two"\n}', '{"one":1,"two":"Two"}'),
    ('{\n    "b": "2",\n    "a": "1"\n}', '{"a":"1","b":"2"}'),
    ('{"b":"2","a":"1"}', '{"a":"1","b":"2"}'),
    (
        """{
            "auth": {
                "success": true,
                "mxid": "@john.doe:example.com",
                "profile": {
                    "display_name": "John Doe",
                    "three_pids": [
                        {"medium": "email", "address": "john.doe@example.org"},
                        {"medium": "msisdn", "address": "123456789"}
                    ]
                }
            }
        }""",
        '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe",'
        '"three_pids":[{"address":"john.doe@example.org","medium":"email"},'
        '{"address":"123456789","medium":"msisdn"}]},"success":true}}',
    ),
    ('{\n    "a": "日本語"\n}', '{"a":"日本語"}'),
    ('{\n    "本": 2,\n    "日": 1\n}', '{"日":1,"本":2}'),
    ('{\n    "a": "\\u65E5"\n}', '{"a":"日"}'),
    ('{\n    "a": null\n}', '{"a":null}'),
]


@pytest.mark.parametrize(("text", "expected"), APPENDIX_EXAMPLES)
def test_appendix_examples_encode_canonically(text: str, expected: str) -> None:
    assert encode_canonical_json(parse_json(text)) == expected.encode("utf-8")


def test_negative_zero_and_exponent_example_as_integers() -> None:
    # Appendix: {"a": -0, "b": 1e10} -> {"a":0,"b":10000000000}. We (like Synapse and ruma)
    # parse 1e10 as a float, which canonical JSON rejects, so the example is checked on the
    # integer values it stands for.
    assert encode_canonical_json(parse_json('{"a": -0}')) == b'{"a":0}'
    assert encode_canonical_json({"a": 0, "b": 10**10}) == b'{"a":0,"b":10000000000}'


def test_control_characters_are_escaped_as_the_grammar_says() -> None:
    assert encode_canonical_json('\n\t\x01\x1f"\\') == b'"\\n\\t\\u0001\\u001f\\"\\\\"'


def test_floats_are_rejected() -> None:
    with pytest.raises(InvalidCanonicalJson):
        encode_canonical_json({"a": [1.5]})
    with pytest.raises(InvalidCanonicalJson):
        encode_canonical_json(parse_json('{"b": 1e10}'))


@pytest.mark.parametrize("value", [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER])
def test_integers_at_the_limits_are_allowed(value: int) -> None:
    assert encode_canonical_json({"n": value}) == b'{"n":%d}' % value


@pytest.mark.parametrize("value", [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 2**63])
def test_integers_beyond_the_limits_are_rejected(value: int) -> None:
    with pytest.raises(InvalidCanonicalJson):
        encode_canonical_json({"nested": {"n": value}})


def test_lenient_encoding_keeps_old_room_values() -> None:
    # Room versions 1-5 may hold floats and large integers: hashing them must still work.
    assert encode_canonical_json({"n": 2**60, "f": 50.5}, strict=False) == (
        b'{"f":50.5,"n":1152921504606846976}'
    )


@pytest.mark.parametrize("value", [{1: "a"}, {"a": object()}, {"a": {1, 2}}])
def test_non_json_values_are_rejected(value: object) -> None:
    with pytest.raises(InvalidCanonicalJson):
        encode_canonical_json(value)


def test_lone_surrogates_are_rejected() -> None:
    with pytest.raises(InvalidCanonicalJson):
        encode_canonical_json(parse_json('{"a": "\\ud800"}'))


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": Infinity}', "[-Infinity]"])
def test_parse_rejects_nan_and_infinity(text: str) -> None:
    with pytest.raises(InvalidJson):
        parse_json(text)


def test_parse_rejects_duplicate_keys() -> None:
    with pytest.raises(InvalidJson, match="duplicate"):
        parse_json('{"a": 1, "b": {"c": 1, "c": 2}}')


@pytest.mark.parametrize("data", [b"\xff{}", b"{", "", "{'a': 1}"])
def test_parse_rejects_malformed_input(data: str | bytes) -> None:
    with pytest.raises(InvalidJson):
        parse_json(data)


def test_parse_accepts_utf8_bytes() -> None:
    assert parse_json('{"a": "日"}'.encode()) == {"a": "日"}
