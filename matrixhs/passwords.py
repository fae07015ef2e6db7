"""Password hashing: Argon2id (argon2-cffi, through Django's hasher).

Django's own defaults (100 MiB, 8 lanes) make a login cost about 0.25 s of two cores
and 100 MiB of memory, so a burst of logins can exhaust a small server. These are the
OWASP-recommended Argon2id parameters instead: 19 MiB, 2 passes, 1 lane.

Hashes are computed on threads of their own, one per core (two at least), whatever thread
asks. A hash is all CPU, so more at once would not finish sooner; and the C heap keeps a
freed 19 MiB block in the arena of the thread that used it, so hashing on every request
thread left one such block behind per thread (sixteen request threads kept over 300 MiB
after a burst of logins). Here only the hashing threads hold them.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from django.contrib.auth.hashers import Argon2PasswordHasher

HASHING_THREADS = max(2, len(os.sched_getaffinity(0)))
_hashing = ThreadPoolExecutor(max_workers=HASHING_THREADS, thread_name_prefix="password-hash")


class Argon2idHasher(Argon2PasswordHasher):
    time_cost = 2
    memory_cost = 19 * 1024
    parallelism = 1

    def encode(self, password: str, salt: str) -> str:
        return _hashing.submit(super().encode, password, salt).result()  # type: ignore[no-any-return]

    def verify(self, password: str, encoded: str) -> bool:
        return _hashing.submit(super().verify, password, encoded).result()  # type: ignore[no-any-return]
