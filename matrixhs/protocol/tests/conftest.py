"""The protocol core's tests need no Django.

The project's root conftest configures Django settings for every test with a session-wide
autouse fixture; overriding it here by name keeps these tests runnable without Django
(``pytest matrixhs/protocol -p no:django``).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _test_settings() -> None:
    """No Django settings to prepare for the pure protocol tests."""
