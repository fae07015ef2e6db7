"""Metrics and the access log of a live server: counters move with requests, /metrics is
served on its own listener and, to a token's bearer, on the main one; the access log has
one line per request and never a token, a password or message content."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.server import RunningServer, free_port

pytestmark = pytest.mark.e2e

METRICS_TOKEN = "metrics-secret-token"
PASSWORD = "correct horse battery staple"
SECRET_BODY = "the-message-body-never-logged"


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    metrics_port = free_port()
    server = RunningServer(
        tmp_path_factory.mktemp("observed"),
        MATRIXHS_METRICS_BIND=f"127.0.0.1:{metrics_port}",
        MATRIXHS_METRICS_TOKEN=METRICS_TOKEN,
        MATRIXHS_LOG_FORMAT="json",
    ).start()
    server.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition text (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _session(server: RunningServer) -> tuple[dict[str, str], str]:
    body = {"username": "carol", "password": PASSWORD, "auth": {"type": "m.login.dummy"}}
    registered = httpx.post(f"{server.base_url}/_matrix/client/v3/register", json=body).json()
    token = registered["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    room = httpx.post(
        f"{server.base_url}/_matrix/client/v3/createRoom", json={}, headers=headers
    ).json()["room_id"]
    return headers, room


def test_counters_move_and_both_listeners_serve_them(observed: RunningServer) -> None:
    headers, room = _session(observed)
    base = observed.base_url
    scrape = observed.metrics_url  # type: ignore[attr-defined]
    before = httpx.get(scrape).text
    route = "_matrix/client/(?:v3|r0)/account/whoami"
    whoami_before = _sample(
        before, "matrixhs_http_requests_total", endpoint=route, method="GET", status="200"
    )
    for _ in range(3):
        assert httpx.get(f"{base}/_matrix/client/v3/account/whoami", headers=headers).is_success
    sent = httpx.put(
        f"{base}/_matrix/client/v3/rooms/{quote(room)}/send/m.room.message/m1",
        json={"msgtype": "m.text", "body": "hello"},
        headers=headers,
    )
    assert sent.is_success
    httpx.get(f"{base}/_matrix/client/v3/sync", params={"timeout": 0}, headers=headers)
    time.sleep(0.2)
    after = httpx.get(scrape).text
    assert (
        _sample(after, "matrixhs_http_requests_total", endpoint=route, method="GET", status="200")
        == whoami_before + 3
    )
    assert _sample(after, "matrixhs_http_request_duration_seconds_count", endpoint=route) >= 3
    assert _sample(after, "matrixhs_http_requests_total", endpoint="sync", status="200") >= 1
    assert _sample(after, "matrixhs_events_persisted_total", origin="local") > _sample(
        before, "matrixhs_events_persisted_total", origin="local"
    )
    assert "matrixhs_to_device_queue " in after
    assert _sample(after, "process_resident_memory_bytes") > 0
    assert "/_matrix/client/v3/account/whoami" not in after, "labelled by pattern, not path"

    assert httpx.get(f"{base}/metrics").status_code == 401
    wrong = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    main = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert main.status_code == 200
    assert "matrixhs_http_requests_total" in main.text


def test_access_log_has_one_json_line_per_request_and_no_secrets(
    observed: RunningServer,
) -> None:
    base = observed.base_url
    body = {"username": "dave", "password": PASSWORD, "auth": {"type": "m.login.dummy"}}
    token = httpx.post(f"{base}/_matrix/client/v3/register", json=body).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    room = httpx.post(f"{base}/_matrix/client/v3/createRoom", json={}, headers=auth).json()[
        "room_id"
    ]
    login = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "dave"},
             "password": PASSWORD}  # fmt: skip
    assert httpx.post(f"{base}/_matrix/client/v3/login", json=login).is_success
    marker = f"m{time.monotonic_ns()}"
    sent = httpx.put(
        f"{base}/_matrix/client/v3/rooms/{quote(room)}/send/m.room.message/{marker}",
        params={"access_token": token},  # the token in the query string
        json={"msgtype": "m.text", "body": SECRET_BODY},
    )
    assert sent.is_success
    time.sleep(0.3)
    lines = [json.loads(line) for line in observed.log_path.read_text().splitlines()
             if line.startswith("{")]  # fmt: skip
    access = [line for line in lines if line["logger"] == "matrixhs.access"]
    mine = [line for line in access if marker in line["path"]]
    assert len(mine) == 1
    entry = mine[0]
    assert entry["method"] == "PUT" and entry["status"] == 200
    assert entry["user"] == f"@dave:{observed.server_name}"
    assert entry["duration_ms"] >= 0
    assert "access_token=<redacted>" in entry["path"]
    logins = [line for line in access if line["path"] == "/_matrix/client/v3/login"]
    assert logins and logins[-1]["status"] == 200
    text = observed.log_path.read_text()
    assert token not in text
    assert PASSWORD not in text
    assert SECRET_BODY not in text
