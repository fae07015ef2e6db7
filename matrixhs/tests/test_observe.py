"""The access log's path masking and JSON lines, and request notes outside a request."""

from __future__ import annotations

import json
import logging

from matrixhs.observe import JsonFormatter, note_endpoint, note_user, safe_path


def test_secret_query_parameters_are_masked() -> None:
    path = safe_path("/_matrix/client/v3/sync", b"access_token=syt_abc&since=s1_2&timeout=0")
    assert "syt_abc" not in path
    assert path == "/_matrix/client/v3/sync?access_token=<redacted>&since=s1_2&timeout=0"
    assert "hunter2" not in safe_path("/x", b"Password=hunter2&sig=zz&client_secret=cs")


def test_a_path_without_query_is_kept() -> None:
    assert safe_path("/_matrix/client/versions", b"") == "/_matrix/client/versions"


def test_notes_outside_a_request_are_ignored() -> None:
    note_endpoint("x")  # no request: nothing to note, and no error
    note_user("@a:b")


def test_json_lines_carry_the_access_fields() -> None:
    record = logging.LogRecord("matrixhs.access", logging.INFO, "", 1, "GET / 200", (), None)
    record.__dict__.update(method="GET", path="/", status=200, duration_ms=1.5, user=None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["logger"] == "matrixhs.access"
    assert entry["status"] == 200 and entry["method"] == "GET" and entry["duration_ms"] == 1.5
    assert entry["time"].endswith("Z")


def test_json_lines_of_errors_carry_the_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, "", 1, "failed", (), sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exception"]
    assert "status" not in entry
