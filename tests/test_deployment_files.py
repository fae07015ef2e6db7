"""docker-compose.yml kept in step with the scaled mode (no `docker compose` here to check
it: its structure is read as Compose would, anchors and merges included)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from matrixhs import settings

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def test_every_piece_of_the_scaled_mode_is_a_service() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "migrate", "homeserver", "worker", "beat"} <= services.keys()
    assert services["migrate"]["command"][-2:] == ["migrate", "--no-input"]
    for name in ("homeserver", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert services["worker"]["command"][:4] == ["celery", "-A", "matrixhs", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "matrixhs", "beat"]
    for name in ("postgres", "redis", "homeserver"):
        assert "healthcheck" in services[name], name


def test_the_processes_share_one_configuration_and_data() -> None:
    services = _compose()["services"]
    env = services["homeserver"]["environment"]
    assert env["DATABASE_URL"].startswith("postgres://") and env["REDIS_URL"].startswith("redis:")
    for name in ("migrate", "worker", "beat"):
        assert services[name]["environment"] == env, name
        assert services[name]["volumes"] == services["homeserver"]["volumes"], name
    # Every MATRIXHS_ setting the file passes is one the server reads.
    for key in env:
        if key.startswith("MATRIXHS_"):
            assert hasattr(settings, key) or hasattr(settings, key.removesuffix("_FILE")), key
