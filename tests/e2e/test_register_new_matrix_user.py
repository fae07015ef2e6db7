"""Synapse's `register_new_matrix_user` (from the matrix-synapse package) provisions an
admin on the real server, and that admin drives the admin API, as operators' scripts do.

The script is looked for in $REGISTER_NEW_MATRIX_USER (a path), then in the Synapse
virtualenv of synapse-pair ($FED_SYNAPSE_VENV, $SYNAPSE_PAIR_DATA/venv, .synapse-pair/venv:
where `.ci/run` installs it), then on PATH. Without it the test is skipped, except under
INTEROP=1 (.ci/run's interop stage, after synapse-pair installed it), where it fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import RunningServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "register_new_matrix_user"
SECRET = "a shared secret for the test"


def find_script() -> Path | None:
    if os.environ.get("REGISTER_NEW_MATRIX_USER"):
        return Path(os.environ["REGISTER_NEW_MATRIX_USER"])
    venvs = [
        os.environ.get("FED_SYNAPSE_VENV"),
        os.environ.get("SYNAPSE_PAIR_DATA") and f"{os.environ['SYNAPSE_PAIR_DATA']}/venv",
        str(ROOT / ".synapse-pair/venv"),
    ]
    for venv in filter(None, venvs):
        candidate = Path(venv) / "bin" / SCRIPT
        if candidate.is_file():
            return candidate
    found = shutil.which(SCRIPT)
    return Path(found) if found else None


@pytest.fixture(scope="module")
def script() -> Path:
    found = find_script()
    if found is None:
        reason = (
            f"{SCRIPT} not found (set REGISTER_NEW_MATRIX_USER, or FED_SYNAPSE_VENV to a "
            "virtualenv with matrix-synapse; `synapse-pair up a` installs one in "
            ".synapse-pair/venv)"
        )
        if os.environ.get("INTEROP") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("hs")
    running = RunningServer(
        data_dir, MATRIXHS_REGISTRATION="disabled", MATRIXHS_REGISTRATION_SHARED_SECRET=SECRET
    ).start()
    # The scaled mode (REDIS_URL) runs background jobs in Celery: a worker with its beat.
    worker = None
    if running.env.get("REDIS_URL"):
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "matrixhs",
                "worker",
                "-B",
                "--pool=solo",
                f"--schedule={data_dir / 'celerybeat-schedule'}",
            ],
            env=running.env,
            cwd=ROOT,
            stdout=(data_dir / "celery.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
    try:
        yield running
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        running.stop()


def register(
    script: Path, server: RunningServer, user: str, *flags: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script), "-u", user, "-p", f"{user}-password", "-k", SECRET, *flags, server.base_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def login(server: RunningServer, user: str) -> str:
    response = httpx.post(
        f"{server.base_url}/_matrix/client/v3/login",
        json={"type": "m.login.password", "user": user, "password": f"{user}-password"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_register_an_admin_then_administer(script: Path, server: RunningServer) -> None:
    made = register(script, server, "operator", "--admin")
    assert made.returncode == 0, made.stdout + made.stderr
    again = register(script, server, "operator", "--admin", "--exists-ok")
    assert again.returncode == 0, again.stdout + again.stderr
    plain = register(script, server, "someone", "--no-admin")
    assert plain.returncode == 0, plain.stdout + plain.stderr

    admin = httpx.Client(
        base_url=f"{server.base_url}/_synapse/admin",
        headers={"Authorization": f"Bearer {login(server, 'operator')}"},
    )
    operator_id = f"@operator:{server.server_name}"
    someone_id = f"@someone:{server.server_name}"
    assert admin.get(f"/v1/users/{operator_id}/admin").json() == {"admin": True}
    assert admin.get(f"/v1/users/{someone_id}/admin").json() == {"admin": False}
    listed = admin.get("/v2/users").json()
    assert {u["name"] for u in listed["users"]} == {operator_id, someone_id}
    assert listed["total"] == 2
    created = admin.put(f"/v2/users/@third:{server.server_name}", json={"password": "p-3"})
    assert created.status_code == 201, created.text
    version = httpx.get(f"{server.base_url}/_synapse/admin/v1/server_version").json()
    assert version["server_version"].startswith("matrixhs")

    # An ordinary user is refused, whatever the endpoint.
    someone = httpx.Client(
        base_url=f"{server.base_url}/_synapse/admin",
        headers={"Authorization": f"Bearer {login(server, 'someone')}"},
    )
    refused = someone.get("/v2/users")
    assert (refused.status_code, refused.json()["errcode"]) == (403, "M_FORBIDDEN")

    # A room deletion runs as the server's background job; its status says when it is done.
    someone_token = someone.headers["Authorization"].split()[1]
    room_id = httpx.post(
        f"{server.base_url}/_matrix/client/v3/createRoom",
        json={"name": "to delete"},
        headers={"Authorization": f"Bearer {someone_token}"},
    ).json()["room_id"]
    delete_id = admin.request("DELETE", f"/v2/rooms/{room_id}", json={"block": True}).json()[
        "delete_id"
    ]
    deadline = time.monotonic() + 60
    while (status := admin.get(f"/v2/rooms/delete_status/{delete_id}").json())[
        "status"
    ] != "complete":
        assert status["status"] in ("scheduled", "active"), status
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["shutdown_room"]["kicked_users"] == [someone_id]
    assert admin.get(f"/v1/rooms/{room_id}").status_code == 404
    assert admin.get(f"/v1/rooms/{room_id}/block").json()["block"] is True

    # A wrong shared secret registers nobody.
    wrong = subprocess.run(
        [str(script), "-u", "intruder", "-p", "x", "-k", "wrong", "--no-admin", server.base_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert wrong.returncode != 0
    assert admin.get(f"/v2/users/@intruder:{server.server_name}").status_code == 404
