"""The Redis cache of the scaled mode, with a process-local stand-in while Redis is down.

Rate-limit windows, typing state and a few lookups live in the cache. When Redis stops
answering, every call goes to a local-memory cache of this process instead (rate limits
count per process, typing is seen by this process's clients only) until Redis answers
again (matrixhs.outages: one probe a second, one warning per outage). Nothing in the
cache is the only copy of anything, so losing it for a while loses no data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from matrixhs import metrics, outages

T = TypeVar("T")

#: Errors that mean "Redis is not there", as opposed to a bad call.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)

_fallback_hits = metrics.DEPENDENCY_FALLBACKS.labels("redis")


class FallbackRedisCache(RedisCache):
    """Django's RedisCache, falling back to a LocMemCache when Redis is unreachable."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self.local = LocMemCache("matrixhs-redis-fallback", {"OPTIONS": {"MAX_ENTRIES": 100_000}})
        outages.redis.in_use()

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if outages.redis.should_try():
            try:
                result = getattr(super(), name)(*args, **kwargs)
            except UNREACHABLE as exc:
                outages.redis.failed(exc)
            else:
                outages.redis.succeeded()
                return result
        _fallback_hits.inc()
        return getattr(self.local, name)(*args, **kwargs)

    def add(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("add", *args, **kwargs)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("get", *args, **kwargs)

    def set(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("set", *args, **kwargs)

    def touch(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("touch", *args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("delete", *args, **kwargs)

    def get_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("get_many", *args, **kwargs)

    def has_key(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("has_key", *args, **kwargs)

    def incr(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("incr", *args, **kwargs)

    def set_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("set_many", *args, **kwargs)

    def delete_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("delete_many", *args, **kwargs)

    def clear(self) -> Any:
        self.local.clear()
        return self._call("clear")


def guarded(call: Callable[[], T], fallback: Callable[[], T]) -> T:
    """``call()`` when Redis is believed up (or is due a probe), else ``fallback()``; a
    failure of ``call`` marks Redis down and returns ``fallback()``."""
    if outages.redis.should_try():
        try:
            result = call()
        except UNREACHABLE as exc:
            outages.redis.failed(exc)
        else:
            outages.redis.succeeded()
            return result
    _fallback_hits.inc()
    return fallback()
