"""A PostgreSQL outage under a live server (on a private cluster): while the database is
down, requests that need it answer 503 with Retry-After at once instead of hanging for
the pool timeout, and the server serves again within a second of the database's return.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.server import RunningServer, free_port
from tests.e2e.services import PrivatePostgres, postgres_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.outage,
    pytest.mark.skipif(postgres_available() is not None, reason=str(postgres_available())),
]

WHOAMI = "/_matrix/client/v3/account/whoami"


@pytest.fixture
def postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivatePostgres]:
    private = PrivatePostgres().init()
    # RunningServer makes its database on the server DATABASE_URL names.
    monkeypatch.setenv("DATABASE_URL", private.url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    try:
        yield private
    finally:
        private.remove()


def _timed(method: str, url: str, **kwargs: object) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.request(method, url, timeout=40, **kwargs)  # type: ignore[arg-type]
    return response, time.monotonic() - started


def test_database_outage_answers_503_fast_and_recovers_within_a_second(
    tmp_path: Path, postgres: PrivatePostgres
) -> None:
    metrics_port = free_port()
    server = RunningServer(tmp_path, MATRIXHS_METRICS_BIND=f"127.0.0.1:{metrics_port}").start()
    try:
        base = server.base_url
        body = {"username": "alice", "password": "pw", "auth": {"type": "m.login.dummy"}}
        token = httpx.post(f"{base}/_matrix/client/v3/register", json=body).json()["access_token"]
        alice = {"Authorization": f"Bearer {token}"}
        room = httpx.post(f"{base}/_matrix/client/v3/createRoom", json={}, headers=alice).json()[
            "room_id"
        ]
        send = f"{base}/_matrix/client/v3/rooms/{quote(room)}/send/m.room.message"
        assert httpx.get(f"{base}{WHOAMI}", headers=alice).status_code == 200

        postgres.stop()
        outage_ends = time.monotonic() + 6
        answers = []
        n = 0
        while time.monotonic() < outage_ends:
            n += 1
            for method, url, extra in (
                ("GET", f"{base}{WHOAMI}", {}),
                ("PUT", f"{send}/t{n}", {"json": {"msgtype": "m.text", "body": "x"}}),
                ("GET", f"{base}/_matrix/client/v3/sync", {"params": {"timeout": 0}}),
            ):
                response, took = _timed(method, url, headers=alice, **extra)
                answers.append((response.status_code, took))
                assert response.status_code == 503, response.text
                assert response.json()["errcode"] == "M_UNKNOWN"
                assert int(response.headers["Retry-After"]) >= 1
            time.sleep(0.1)
        assert max(took for _, took in answers) < 4, "the first request finds the outage"
        later = sorted(took for _, took in answers[3:])
        assert later[len(later) // 2] < 0.2, "then requests fail fast"
        versions = httpx.get(f"{base}/_matrix/client/versions")
        assert versions.status_code == 200, "what needs no database is still served"
        health, took = _timed("GET", f"{base}/health")
        assert health.status_code == 503 and took < 1, "load balancers see it at once"

        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert 'matrixhs_dependency_up{dependency="database"} 0.0' in scraped
        assert 'matrixhs_dependency_outages_total{dependency="database"} 1.0' in scraped

        postgres.start()  # returns once the server accepts connections
        back_at = time.monotonic()
        while True:
            response = httpx.get(f"{base}{WHOAMI}", headers=alice, timeout=40)
            if response.status_code == 200:
                break
            assert response.status_code == 503
            assert time.monotonic() - back_at < 5, "never recovered"
            time.sleep(0.05)
        assert time.monotonic() - back_at < 1.0, "serves again within a second"
        assert httpx.get(f"{base}/health").text == "OK"
        sent = httpx.put(f"{send}/after", json={"msgtype": "m.text", "body": "back"}, headers=alice)
        assert sent.status_code == 200, sent.text
        log = server.log_path.read_text()
        assert log.count("database is unreachable") == 1, log
        assert "database is back" in log, log
        assert "Traceback" not in log, log
        assert "Service Unavailable" not in log, "no line per request that met the outage"
    finally:
        server.stop()
