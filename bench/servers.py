"""The servers a benchmark compares: this homeserver, and Synapse from PyPI.

Synapse is not a dependency of the project: install it in a virtualenv of its own and
point ``--synapse-python`` (or ``SYNAPSE_PYTHON``) at that virtualenv's python::

    python3 -m venv /tmp/synvenv && /tmp/synvenv/bin/pip install "matrix-synapse[postgres]"

Both run as one process on 127.0.0.1 with rate limits raised and presence off, on the
same PostgreSQL (a fresh database each, dropped afterwards).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.server import RunningServer, free_port

SYNAPSE_CONFIG = """
server_name: "{server_name}"
pid_file: "{data}/homeserver.pid"
public_baseurl: "http://127.0.0.1:{port}/"
listeners:
  - port: {port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: psycopg2
  args:
    user: {user}
    host: {host}
    port: {db_port}
    database: {database}
    cp_min: 5
    cp_max: 10
media_store_path: "{data}/media"
signing_key_path: "{data}/signing.key"
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
enable_registration: true
enable_registration_without_verification: true
presence:
  enabled: false
rc_message: {{per_second: 100000, burst_count: 100000}}
rc_registration: {{per_second: 100000, burst_count: 100000}}
rc_login:
  address: {{per_second: 100000, burst_count: 100000}}
  account: {{per_second: 100000, burst_count: 100000}}
  failed_attempts: {{per_second: 100000, burst_count: 100000}}
rc_joins:
  local: {{per_second: 100000, burst_count: 100000}}
  remote: {{per_second: 100000, burst_count: 100000}}
rc_joins_per_room: {{per_second: 100000, burst_count: 100000}}
rc_invites:
  per_room: {{per_second: 100000, burst_count: 100000}}
  per_user: {{per_second: 100000, burst_count: 100000}}
  per_issuer: {{per_second: 100000, burst_count: 100000}}
rc_presence:
  per_user: {{per_second: 100000, burst_count: 100000}}
rc_delayed_event_mgmt: {{per_second: 100000, burst_count: 100000}}
rc_room_creation: {{per_second: 100000, burst_count: 100000}}
rc_reports: {{per_second: 100000, burst_count: 100000}}
rc_3pid_validation: {{per_second: 100000, burst_count: 100000}}
log_config: "{data}/log.yaml"
"""

LOG_CONFIG = """
version: 1
formatters:
  plain: {format: '%(asctime)s %(levelname)s %(name)s: %(message)s'}
handlers:
  file: {class: logging.FileHandler, filename: "DATA/synapse.log", formatter: plain}
root: {level: WARNING, handlers: [file]}
disable_existing_loggers: false
"""


class Synapse:
    """Synapse in a subprocess, on a fresh PostgreSQL database."""

    def __init__(self, python: str, data_dir: Path, database_url: str) -> None:
        self.python = python
        self.data = data_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server_name = "synapse.bench"
        parsed = urlparse(database_url)
        self.pg = {
            "user": parsed.username or "postgres",
            "host": parsed.hostname or "127.0.0.1",
            "db_port": parsed.port or 5432,
        }
        self.admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
        self.database = f"synapse_bench_{secrets.token_hex(4)}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> Synapse:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                f"CREATE DATABASE {self.database} ENCODING 'UTF8' LC_COLLATE='C' LC_CTYPE='C' "
                "TEMPLATE template0"
            )
        self.data.mkdir(parents=True, exist_ok=True)
        config = self.data / "homeserver.yaml"
        config.write_text(
            SYNAPSE_CONFIG.format(
                server_name=self.server_name,
                data=self.data,
                port=self.port,
                database=self.database,
                **self.pg,
            )
        )
        (self.data / "log.yaml").write_text(LOG_CONFIG.replace("DATA", str(self.data)))
        run = [self.python, "-m", "synapse.app.homeserver", "-c", str(config)]
        subprocess.run([*run, "--generate-keys"], check=True, capture_output=True)
        log = (self.data / "stdout.log").open("wb")
        self.process = subprocess.Popen(run, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.data / "stdout.log").read_text()[-3000:])
            try:
                httpx.get(f"{self.base_url}/_matrix/client/versions", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("Synapse did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")


def run_in_scratch_database(database_url: str | None, prefix: str, run: Callable[[], None]) -> None:
    """``run()``, in-process, on a fresh database: SQLite in a fresh data dir when
    ``database_url`` names no PostgreSQL server, else a database of its own there (named
    ``prefix_<random>``, DATABASE_URL pointing at it meanwhile), dropped afterwards."""
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    if not database_url or not database_url.startswith("postgres"):
        run()
        return
    server = database_url.rsplit("/", 1)[0]
    database = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    os.environ["DATABASE_URL"] = f"{server}/{database}"
    try:
        run()
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def matrixhs(data_dir: Path, **env: str) -> RunningServer:
    """This homeserver (embedded mode unless DATABASE_URL is set in the environment).

    Presence is off, as in the Synapse config above, so neither pays for it.
    """
    return RunningServer(
        data_dir, server_name="matrixhs.bench", **{"MATRIXHS_PRESENCE_ENABLED": "false", **env}
    )
