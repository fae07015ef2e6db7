"""Password hashing: Argon2id (argon2-cffi, through Django's hasher).

Django's own defaults (100 MiB, 8 lanes) make a login cost about 0.25 s of two cores
and 100 MiB of memory, so a burst of logins can exhaust a small server. These are the
OWASP-recommended Argon2id parameters instead: 19 MiB, 2 passes, 1 lane.
"""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idHasher(Argon2PasswordHasher):
    time_cost = 2
    memory_cost = 19 * 1024
    parallelism = 1
