"""Server ACLs and their globs."""

from __future__ import annotations

import time

import pytest

from matrixhs.protocol.acl import glob_match, server_allowed


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "anything.example", True),
        ("*.example", "a.example", True),
        ("*.example", "example", False),
        ("matrix.org", "matrix.org", True),
        ("matrix.org", "matrix.orgx", False),
        ("?.org", "a.org", True),
        ("?.org", "ab.org", False),
        ("a*b*c", "aXXbYYc", True),
        ("a*b*c", "aXXbYY", False),
        ("", "", True),
        ("", "x", False),
    ],
)
def test_globs(pattern: str, value: str, expected: bool) -> None:
    assert glob_match(pattern, value) is expected


def test_pathological_globs_stay_fast() -> None:
    started = time.monotonic()
    assert not glob_match("a*a*a*a*a*a*a*b", "a" * 5000)
    assert time.monotonic() - started < 1


ACL = {"allow": ["*"], "deny": ["evil.example", "*.evil.example"], "allow_ip_literals": False}


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("good.example", True),
        ("good.example:8448", True),
        ("evil.example", False),
        ("evil.example:443", False),
        ("sub.evil.example", False),
        ("1.2.3.4", False),
        ("1.2.3.4:8448", False),
        ("[::1]:8448", False),
    ],
)
def test_acl(server: str, expected: bool) -> None:
    assert server_allowed(ACL, server) is expected


def test_no_acl_allows_all_and_an_empty_allow_list_nobody() -> None:
    assert server_allowed(None, "any.example")
    assert not server_allowed({"deny": []}, "any.example")
    assert server_allowed({"allow": ["*"]}, "1.2.3.4")
