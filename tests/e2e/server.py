"""Start the real homeserver (`manage.py migrate` + `manage.py serve`) for end-to-end tests.

Each server gets its own data dir, a free port on 127.0.0.1 and its own database: a
SQLite file, or, when DATABASE_URL points at PostgreSQL, a fresh database on that
server that is dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningServer:
    def __init__(self, data_dir: Path, server_name: str | None = None, **env: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server_name = server_name or f"127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.database_url, self._pg_admin_url, self._pg_name = self._database()
        self.env = {
            **os.environ,
            "MATRIXHS_DATA_DIR": str(data_dir),
            "MATRIXHS_SERVER_NAME": self.server_name,
            "MATRIXHS_BIND": f"127.0.0.1:{self.port}",
            "MATRIXHS_REGISTRATION": "open",
            "MATRIXHS_RATELIMIT_ENABLED": "false",
            **env,
        }
        if self.database_url:
            self.env["DATABASE_URL"] = self.database_url
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"

    def _database(self) -> tuple[str, str, str]:
        url = os.environ.get("DATABASE_URL", "")
        if not url.startswith(("postgres://", "postgresql://")):
            return "", "", ""
        name = f"matrixhs_e2e_{secrets.token_hex(4)}"
        parsed = urlparse(url)
        admin_url = urlunparse(parsed._replace(path="/postgres"))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return urlunparse(parsed._replace(path=f"/{name}")), admin_url, name

    def start(self, timeout: float = 60) -> RunningServer:
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=self.env, check=True, cwd=ROOT)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*manage, "serve"], env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                httpx.get(f"{self.base_url}/_matrix/client/versions", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()}")

    def sibling(self) -> RunningServer:
        """Another `serve` process of the same homeserver: same database, data dir (and so
        signing key) and server name, its own port (the scaled mode's N processes)."""
        other = RunningServer.__new__(RunningServer)
        other.port = free_port()
        other.base_url = f"http://127.0.0.1:{other.port}"
        other.server_name = self.server_name
        other.data_dir = self.data_dir
        other.database_url, other._pg_admin_url, other._pg_name = self.database_url, "", ""
        other.env = {**self.env, "MATRIXHS_BIND": f"127.0.0.1:{other.port}"}
        other.process = None
        other.log_path = self.data_dir / f"server-{other.port}.log"
        return other

    def stop(self, drop_database: bool = True) -> None:
        """Stop the process (SIGTERM); ``drop_database=False`` keeps its PostgreSQL
        database for a later ``start`` (a restart)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._pg_name and drop_database:
            with psycopg.connect(self._pg_admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')


def federating_instance(data_dir: Path, certs: Path, **env: str) -> RunningServer:
    """This server as ``localhost:<port>``, with a TLS federation listener on that port
    (certificate from the pair's CA, which it trusts for outbound requests) and loopback
    allowed for outbound federation; not started."""
    fed_port = free_port()
    return RunningServer(
        data_dir,
        server_name=f"localhost:{fed_port}",
        MATRIXHS_FEDERATION_BIND=f"127.0.0.1:{fed_port}",
        MATRIXHS_TLS_CERT_FILE=str(certs / "tls.crt"),
        MATRIXHS_TLS_KEY_FILE=str(certs / "tls.key"),
        MATRIXHS_FEDERATION_CA_FILE=str(certs / "ca.crt"),
        MATRIXHS_FEDERATION_IP_ALLOWLIST="127.0.0.0/8,::1/128",
        MATRIXHS_FEDERATION_RETRY_MIN_S="1",
        MATRIXHS_FEDERATION_RETRY_MAX_S="5",
        **env,
    )
