"""Filter patterns ("m.room.*") match in linear time, in memory and in SQL, with the same
answers: ``*`` is the only wildcard, every other character stands for itself."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import quote

from django.test import SimpleTestCase

from matrixhs.filters import MAX_PATTERN_BYTES, MAX_WILDCARD_PATTERNS, glob_matches
from matrixhs.testing import MatrixTestCase

#: A regular expression backtracks through every way of placing the stars: about 12 s of
#: CPU for one 250-character type with this pattern (the review's reproduction).
PATHOLOGICAL = "a*a*a*a*a*b"
LONG_TYPE = "a" * 250


def _reference(pattern: str, value: str) -> bool:
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), value, re.DOTALL) is not None


CASES = [
    ("m.room.*", "m.room.message", True),
    ("m.room.*", "m.room.", True),
    ("m.room.*", "m.roo", False),
    ("*", "", True),
    ("", "", True),
    ("", "a", False),
    ("m.*.member", "m.room.member", True),
    ("m.*.member", "m.member", False),
    ("*a*a*", "aa", True),
    ("*a*a*", "a", False),
    ("ab*ba", "aba", False),
    ("ab*ba", "abba", True),
    ("a*b*c", "aXbYbZc", True),
    ("a*b*c", "acb", False),
    ("m.?", "m.x", False),
    ("m.?", "m.?", True),
    ("m.%", "m.x", False),
    ("m._", "m.x", False),
    ("m.[x]", "m.x", False),
    ("m.[x]*", "m.[x]y", True),
    ("m.\\*", "m.\\x", True),
    ("M.room.*", "m.room.message", False),
    (PATHOLOGICAL, LONG_TYPE, False),
    (PATHOLOGICAL, LONG_TYPE + "b", True),
]


class GlobMatchesTest(SimpleTestCase):
    def test_matches_like_the_reference_regex(self) -> None:
        for pattern, value, expected in CASES:
            self.assertEqual(glob_matches(pattern, value), expected, (pattern, value))
            if pattern != PATHOLOGICAL:
                self.assertEqual(_reference(pattern, value), expected, (pattern, value))

    def test_pathological_pattern_against_a_long_value_is_fast(self) -> None:
        value = "a" * 1_000_000
        start = time.perf_counter()
        self.assertFalse(glob_matches("a*" * 100 + "b", value))
        self.assertTrue(glob_matches("a*" * 100, value))
        self.assertLess(time.perf_counter() - start, 1.0)


class FilterGlobsTest(MatrixTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room_id = (
            self.api(self.alice).post("/_matrix/client/v3/createRoom", {}).body["room_id"]
        )
        self.room = quote(self.room_id)

    def send(self, event_type: str) -> str:
        path = f"/_matrix/client/v3/rooms/{self.room}/send/{quote(event_type)}/{len(event_type)}"
        response = self.api(self.alice).put(path, {"n": event_type})
        self.assertEqual(response.status_code, 200, (event_type, response.body))
        return str(response.body["event_id"])

    def messages(self, event_filter: dict[str, object]) -> list[str]:
        inline = quote(json.dumps(event_filter))
        path = f"/_matrix/client/v3/rooms/{self.room}/messages?dir=b&limit=100&filter={inline}"
        response = self.api(self.alice).get(path)
        self.assertEqual(response.status_code, 200, response.body)
        return [e["type"] for e in response.body["chunk"]]

    def test_sql_matching_agrees_with_memory_matching(self) -> None:
        types = sorted(
            {v for _, v, _ in CASES if v and len(v) < 200 and not v.startswith("m.room.")}
        )
        for event_type in types:
            self.send(event_type)
        for pattern, _, _ in CASES:
            if pattern == PATHOLOGICAL:
                continue
            expected = [t for t in types if glob_matches(pattern, t)]
            got = self.messages({"types": [pattern], "not_types": ["m.room.*"]})
            self.assertEqual(sorted(got), expected, pattern)

    def test_pathological_pattern_against_a_long_type_is_fast(self) -> None:
        self.send(LONG_TYPE)
        account_data = f"/_matrix/client/v3/user/{quote(self.alice.user_id)}/account_data"
        self.api(self.alice).put(f"{account_data}/{LONG_TYPE}", {"k": 1})
        start = time.perf_counter()
        self.assertEqual(self.messages({"types": [PATHOLOGICAL]}), [])
        self.assertEqual(self.messages({"not_types": [PATHOLOGICAL], "types": ["a*"]}), [LONG_TYPE])
        body = self.sync(
            self.alice,
            filter=json.dumps(
                {
                    "account_data": {"types": [PATHOLOGICAL]},
                    "room": {"timeline": {"types": [PATHOLOGICAL]}},
                }
            ),
        )
        self.assertEqual(body.get("account_data", {}).get("events", []), [])
        self.assertLess(time.perf_counter() - start, 2.0)

    def test_patterns_are_bounded(self) -> None:
        path = f"/_matrix/client/v3/user/{quote(self.alice.user_id)}/filter"
        too_long = {"room": {"timeline": {"types": ["x" * (MAX_PATTERN_BYTES + 1)]}}}
        too_many = {"account_data": {"not_types": ["*x"] * (MAX_WILDCARD_PATTERNS + 1)}}
        for body in (too_long, too_many):
            self.assert_matrix_error(self.api(self.alice).post(path, body), 400, "M_BAD_JSON")
        enough = {"room": {"timeline": {"types": ["*x"] * MAX_WILDCARD_PATTERNS}}}
        self.assertEqual(self.api(self.alice).post(path, enough).status_code, 200)
