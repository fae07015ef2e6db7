"""Outages of the services the server depends on (Redis, the database), as seen from here.

Each :class:`Dependency` is up until a call to it fails; then it is down until a call
succeeds again. While it is down, callers skip it and use their fallback (process-local
counters and state, polling the database, a fast 503), and one caller at a time, at
most every ``probe_interval`` seconds, tries it again: that is how recovery is noticed,
without a retry storm. An outage logs one warning when it starts and one line when it
ends (never a traceback per request), and counts in the metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg
from psycopg_pool import PoolClosed, PoolTimeout

from matrixhs import metrics

logger = logging.getLogger("matrixhs.outages")


class Dependency:
    def __init__(self, name: str, probe_interval: float) -> None:
        self.name = name
        self.probe_interval = probe_interval
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_probe = 0.0
        self._listeners: list[Callable[[bool], None]] = []

    def in_use(self) -> None:
        """The server uses this dependency (its ``up`` metric is exported from now on)."""
        if self._down_since is None:
            metrics.DEPENDENCY_UP.labels(self.name).set(1)

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def on_change(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(up)`` when an outage starts (False) or ends (True)."""
        self._listeners.append(listener)

    def should_try(self) -> bool:
        """Whether to call the dependency now: always while it is up; while it is down,
        True for one caller per probe interval (the others use their fallback)."""
        if self._down_since is None:
            return True
        now = time.monotonic()
        with self._lock:
            if now < self._next_probe:
                return False
            self._next_probe = now + self.probe_interval
            return True

    def failed(self, exc: BaseException | None = None) -> None:
        """A call failed because the dependency is unreachable."""
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
            self._next_probe = self._down_since + self.probe_interval
        metrics.DEPENDENCY_OUTAGES.labels(self.name).inc()
        metrics.DEPENDENCY_UP.labels(self.name).set(0)
        logger.warning(
            "%s is unreachable (%s); degraded until it is back", self.name, _describe(exc)
        )
        self._tell(False)

    def succeeded(self) -> None:
        """A call went through: the outage, if any, is over."""
        if self._down_since is None:
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is None:
            return
        metrics.DEPENDENCY_UP.labels(self.name).set(1)
        logger.info("%s is back after %.1f s", self.name, time.monotonic() - since)
        self._tell(True)

    def _tell(self, up: bool) -> None:
        for listener in self._listeners:
            try:
                listener(up)
            except Exception:
                logger.exception("outage listener of %s failed", self.name)

    def reset(self) -> None:
        """Forget any outage (tests)."""
        with self._lock:
            self._down_since = None
            self._next_probe = 0.0
        metrics.DEPENDENCY_UP.labels(self.name).set(1)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no answer"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class DatabaseUnavailable(psycopg.OperationalError):
    """The database server is down (Django wraps it as django.db.OperationalError)."""


def database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (a psycopg error, or Django's wrapper of one) means the database
    server cannot be reached or lent no connection in time, as opposed to a statement
    that failed."""
    cause = exc if isinstance(exc, psycopg.Error) else exc.__cause__
    if not isinstance(cause, psycopg.OperationalError):
        return False
    if isinstance(cause, (DatabaseUnavailable, PoolTimeout, PoolClosed)):
        return True
    sqlstate = cause.sqlstate
    # None: the connection failed or broke. 08: connection exceptions. 57P01-3: the
    # server is shutting down, crashed, or does not accept connections yet.
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03")


def pool_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is the pool lending no connection in time (load, not an outage)."""
    return isinstance(exc, PoolTimeout) or isinstance(exc.__cause__, PoolTimeout)


#: Redis: the shared cache (rate limits, typing), the channel layer (wake-ups), the broker.
redis = Dependency("redis", probe_interval=1.0)
#: The database (PostgreSQL; SQLite is a local file and is never "down").
database = Dependency("database", probe_interval=0.5)


class QuietOutages(logging.Filter):
    """On the loggers that would report every failed call while Redis or the database is
    down (the channel layer's receiver, the pool's reconnection attempts, background
    jobs, Django's 5xx responses): those records become the dependency's one warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        from matrixhs.cache import UNREACHABLE

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, UNREACHABLE):
            redis.failed(exc)
            return False
        if exc is not None and database_unreachable(exc):
            if not pool_busy(exc):
                database.failed(exc)
            return False
        if record.name == "psycopg.pool" and record.getMessage().startswith("error connecting"):
            return False  # the pool retrying; requests report the outage
        return getattr(record, "status_code", None) != 503  # an outage, already reported
