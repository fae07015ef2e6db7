from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.server import RunningServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(tmp_path_factory.mktemp("hs")).start()
    try:
        yield running
    finally:
        running.stop()
