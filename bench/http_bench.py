"""Requests per second of the real server for /versions and for password login.

Starts `manage.py serve` (embedded mode unless DATABASE_URL is set, rate limits off),
then drives it with wrk (Debian package `wrk`) from a second process on loopback:

    .venv/bin/python bench/http_bench.py [--seconds 10] [--connections 32,256]
        [--asgi daphne,uvicorn]

Prints one line per (ASGI server, endpoint, connections): requests/s, latency
percentiles, and the server process's resident memory (now and its peak) and thread
count after the run. Login is bounded by Argon2id password hashing
(matrixhs/passwords.py); whoami is the cheapest request that reads the database (the
access-token lookup).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.server import RunningServer

LOGIN_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '%s'
"""


def wrk(
    url: str, seconds: int, connections: int, script: str | None = None, token: str | None = None
) -> dict[str, str]:
    # A request queued for longer than wrk's default 2 s would be dropped from the
    # figures as a timeout: wait up to 30 s, so that every answer counts.
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    if token:
        cmd[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result = {"req/s": re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)}  # type: ignore[union-attr]
    result["requests"] = re.search(r"(\d+) requests in", out).group(1)  # type: ignore[union-attr]
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.MULTILINE)
        result[f"p{pct}"] = match.group(1) if match else "?"
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non-2xx"] = errors.group(1) if errors else "0"
    timeouts = re.search(r"Socket errors:.*timeout (\d+)", out)
    result["timeouts"] = timeouts.group(1) if timeouts else "0"
    return result


def process_status(pid: int) -> dict[str, str]:
    """The fields of /proc/<pid>/status (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return {
        k: v.strip() for k, v in (line.split(":", 1) for line in status.splitlines() if ":" in line)
    }


def memory_mib(pid: int) -> tuple[int, int]:
    """Resident memory of a process now (VmRSS) and its peak so far (VmHWM), in MiB."""
    values = process_status(pid)
    return int(values["VmRSS"].split()[0]) // 1024, int(values["VmHWM"].split()[0]) // 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by a process, all its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_figures(pid: int) -> str:
    """Resident memory (now / peak, MiB) and threads of the server process (Linux)."""
    rss, peak = memory_mib(pid)
    return f"RSS {rss:>4} MiB (peak {peak:>4})  threads {process_status(pid)['Threads']:>4}"


def run(asgi: str, seconds: int, connections: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = RunningServer(Path(tmp), MATRIXHS_ASGI_SERVER=asgi).start()
        try:
            body = {
                "username": "bench",
                "password": "bench password",
                "auth": {"type": "m.login.dummy"},
            }
            registered = httpx.post(f"{server.base_url}/_matrix/client/v3/register", json=body)
            token = registered.raise_for_status().json()["access_token"]
            login = {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": "bench"},
                "password": "bench password",
            }
            script = Path(tmp) / "login.lua"
            script.write_text(LOGIN_LUA % json.dumps(login))
            assert server.process is not None
            for count in connections:
                for name, url, lua, auth in (
                    ("GET /versions", "/_matrix/client/versions", None, None),
                    ("GET /whoami", "/_matrix/client/v3/account/whoami", None, token),
                    ("POST /login", "/_matrix/client/v3/login", str(script), None),
                ):
                    r = wrk(server.base_url + url, seconds, count, lua, auth)
                    print(
                        f"{asgi:8} {name:14} c={count:<4} {r['req/s']:>9} req/s  "
                        f"p50 {r['p50']:>8}  p99 {r['p99']:>8}  non-2xx {r['non-2xx']}  "
                        f"timeouts {r['timeouts']}  "
                        f"{process_figures(server.process.pid)}",
                        flush=True,
                    )
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--connections", default="32,256", help="comma-separated wrk connection counts"
    )
    parser.add_argument("--asgi", default="daphne,uvicorn")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt install wrk")
    for asgi in args.asgi.split(","):
        run(asgi, args.seconds, [int(c) for c in args.connections.split(",")])


if __name__ == "__main__":
    main()
