"""Private Redis and PostgreSQL servers for the outage tests: started on a free port of
127.0.0.1, stopped by their own process id, never the machine's shared services."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.e2e.server import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=0.5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _postgres_user() -> tuple[list[str], int | None, int | None]:
    """How to run the PostgreSQL binaries (initdb refuses root): the command prefix and
    the uid/gid that must own the cluster's files."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        return [], None, None
    return ["runuser", "-u", "postgres", "--"], entry.pw_uid, entry.pw_gid


def postgres_available() -> str | None:
    """None when a private cluster can be made here, else why not."""
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL binaries in {PG_BIN}"
    prefix, uid, _ = _postgres_user()
    if os.geteuid() == 0 and uid is None:
        return "running as root without a postgres user: initdb refuses root"
    if prefix and shutil.which("runuser") is None:
        return "running as root without runuser"
    return None


class PrivatePostgres:
    """A throw-away PostgreSQL cluster in a temporary directory (trust auth, 127.0.0.1)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.prefix, self.uid, self.gid = _postgres_user()
        self.dir = Path(tempfile.mkdtemp(prefix="matrixhs-pg-"))
        self.data = self.dir / "data"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, capture_output=True)

    def init(self) -> PrivatePostgres:
        if self.uid is not None:
            os.chown(self.dir, self.uid, self.gid or -1)
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "-A", "trust", "--no-sync")  # fmt: skip
        self.start()
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.dir / "log"), "-w", "start")  # fmt: skip

    def stop(self) -> None:
        """Stop the cluster at once (open connections are cut, as in a crash or failover)."""
        if (self.data / "postmaster.pid").exists():
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                      "stop")  # fmt: skip

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
