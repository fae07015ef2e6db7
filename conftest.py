"""Test-wide settings: no rate limits, open registration, cheap password hashing.

They are set once for the session, directly on the settings object, so that a test's
``override_settings`` still wins over them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

# Property tests (matrixhs/tests/test_request_parsers_properties.py): a few dozen examples
# each in the default suite; HYPOTHESIS_PROFILE=thorough runs 10,000 each. No example
# database: a failure is reported with its example, and nothing is written to the tree.
_HYPOTHESIS = {
    "database": None,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
hypothesis_settings.register_profile("default", max_examples=30, **_HYPOTHESIS)
hypothesis_settings.register_profile("thorough", max_examples=10_000, **_HYPOTHESIS)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

#: The browser tests (Element Web, the admin) run with scripts/browser-tests.
collect_ignore = [] if os.environ.get("MATRIXHS_BROWSER_TESTS") else ["tests/browser"]


def reset_storages() -> None:
    """Forget the storage backends made from an earlier STORAGES."""
    from django.core.files.storage import storages

    storages.__dict__.pop("backends", None)
    storages._backends = None
    storages._storages = {}


@pytest.fixture(scope="session", autouse=True)
def _test_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    from django.contrib.auth.hashers import get_hashers, get_hashers_by_algorithm

    from federation.keys import get_signing_key

    settings.MATRIXHS_RATELIMIT_ENABLED = False
    settings.MATRIXHS_REGISTRATION = "open"
    settings.MATRIXHS_SERVER_NAME = "test.local"
    settings.PASSWORD_HASHERS = ["matrixhs.testing.FastArgon2PasswordHasher"]
    settings.MATRIXHS_SIGNING_KEY_PATH = Path(tmp_path_factory.mktemp("keys")) / "signing.key"
    settings.STORAGES = {
        **settings.STORAGES,
        "media": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path_factory.mktemp("media"))},
        },
    }
    reset_storages()
    get_signing_key.cache_clear()
    get_hashers.cache_clear()
    get_hashers_by_algorithm.cache_clear()


@pytest.fixture(autouse=True)
def _forget_process_shortcuts() -> None:
    """Per-process shortcuts (presence marks) must not leak from one test to the next,
    whose database was rolled back."""
    from federation.actions import backfill, outbound
    from sync import presence

    presence._recently_marked.clear()
    outbound.forget_cached_servers()
    backfill.forget_idle_rooms()


@pytest.fixture(autouse=True)
def _forget_push_caches() -> None:
    """The push caches are keyed by database positions, which never repeat on a server
    but do between tests whose transactions were rolled back."""
    from push.actions.notifications import forget_cached

    forget_cached()
