"""Interop with a real Synapse (../shared/interop/synapse-pair, side A) over TLS on
127.0.0.1. .ci/run starts it and runs these tests alone (INTEROP=1; one test stops and
restarts Synapse, so they must not run beside other tests using it):

    INTEROP=1 FED_DB=sqlite SYNAPSE_PAIR_DATA=$PWD/.synapse-pair \
        .venv/bin/python -m pytest tests/interop -n 0

Without INTEROP=1, or without a Synapse answering, they are skipped."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import RunningServer, federating_instance

ROOT = Path(__file__).resolve().parents[2]
SYNAPSE_CLIENT_URL = os.environ.get("INTEROP_SYNAPSE_URL", "http://127.0.0.1:18118")
SYNAPSE_SERVER_NAME = os.environ.get("INTEROP_SYNAPSE_SERVER_NAME", "localhost:18448")


def _pair_script() -> Path:
    """synapse-pair: $INTEROP_SYNAPSE_PAIR, or shared/interop/ beside the checkout (or
    beside the folder of worktrees)."""
    if os.environ.get("INTEROP_SYNAPSE_PAIR"):
        return Path(os.environ["INTEROP_SYNAPSE_PAIR"])
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared/interop/synapse-pair").is_file():
            return base / "shared/interop/synapse-pair"
    return ROOT.parent / "shared/interop/synapse-pair"


PAIR_SCRIPT = _pair_script()
PAIR_DATA = Path(os.environ.get("SYNAPSE_PAIR_DATA", ROOT / ".synapse-pair"))


def synapse_is_up() -> bool:
    try:
        return httpx.get(f"{SYNAPSE_CLIENT_URL}/_matrix/client/versions", timeout=2).is_success
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def synapse_url() -> str:
    if os.environ.get("INTEROP") != "1":
        pytest.skip("Interop tests run with INTEROP=1 (.ci/run)")
    if not synapse_is_up():
        pytest.skip(f"No Synapse at {SYNAPSE_CLIENT_URL} (start it with synapse-pair up a)")
    return SYNAPSE_CLIENT_URL


@pytest.fixture(scope="module")
def federating_server(
    synapse_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """`manage.py serve` with a TLS federation listener and a certificate from the pair's
    CA, as server ``localhost:<port>``."""
    certs = tmp_path_factory.mktemp("certs")
    subprocess.run(
        [str(PAIR_SCRIPT), "cert", str(certs)],
        check=True,
        capture_output=True,
        env={**os.environ, "SYNAPSE_PAIR_DATA": str(PAIR_DATA)},
    )
    server = federating_instance(tmp_path_factory.mktemp("hs"), certs)
    server.start()
    try:
        yield server
    finally:
        server.stop()
