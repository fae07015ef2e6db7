"""Rate limits: fixed windows counted in the cache (Redis when REDIS_URL is set, so every
process shares the counters; process memory in embedded mode, where there is one process).

Buckets and their COUNT/SECONDS come from settings.MATRIXHS_RATELIMITS. A request is
counted against its user when there is one, else against its client IP; the "auth"
bucket always counts per IP, since its users are not authenticated yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.request import Request

from matrixhs.errors import LimitExceeded


@dataclass(frozen=True)
class RateState:
    limit: int
    remaining: int


def client_ip(request: HttpRequest | Request) -> str:
    """The client's address. Behind trusted proxies it is the address the outermost of them
    saw, already put in the ASGI scope by matrixhs.asgi.TrustedProxies; nothing here reads
    X-Forwarded-For, whose leftmost entries any client can write."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def check(bucket: str, request: HttpRequest | Request, user_id: str | None) -> RateState | None:
    """Count one request in ``bucket``.

    Returns:
        The limit and what remains of it, or None when rate limiting is off.

    Raises:
        LimitExceeded: the window's allowance is used up.
    """
    if not settings.MATRIXHS_RATELIMIT_ENABLED:
        return None
    limit, seconds = settings.MATRIXHS_RATELIMITS[bucket]
    who = user_id if (user_id and bucket != "auth") else f"ip:{client_ip(request)}"
    now = time.time()
    window = int(now // seconds)
    key = f"rl:{bucket}:{who}:{window}"
    cache.add(key, 0, timeout=seconds + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # the key expired between add and incr
        cache.add(key, 1, timeout=seconds + 1)
        count = 1
    if count > limit:
        retry_after_ms = int(((window + 1) * seconds - now) * 1000) + 1
        raise LimitExceeded(retry_after_ms)
    return RateState(limit=limit, remaining=limit - count)
