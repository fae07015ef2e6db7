"""Password hashes are computed on the hashing threads only, a bounded number at once
(matrixhs.passwords)."""

from __future__ import annotations

import threading
import time
from typing import Any
from unittest import mock

from django.contrib.auth.hashers import check_password, make_password

from matrixhs import passwords


def test_hashes_run_on_the_hashing_threads_a_few_at_once(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["matrixhs.passwords.Argon2idHasher"]
    running = peak = 0
    threads_seen: set[str] = set()
    lock = threading.Lock()

    def slow_hash(*args: object, **kwargs: object) -> bytes:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            threads_seen.add(threading.current_thread().name)
        time.sleep(0.05)
        with lock:
            running -= 1
        return b"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"

    with mock.patch("argon2.low_level.hash_secret", slow_hash):
        callers = [
            threading.Thread(target=make_password, args=("pw",))
            for _ in range(passwords.HASHING_THREADS + 4)
        ]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
    assert peak == passwords.HASHING_THREADS
    assert all(name.startswith("password-hash") for name in threads_seen)


def test_a_hash_made_on_the_hashing_threads_verifies(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["matrixhs.passwords.Argon2idHasher"]
    encoded = make_password("correct horse")
    assert encoded.startswith("argon2$argon2id$")
    assert check_password("correct horse", encoded)
    assert not check_password("wrong", encoded)
