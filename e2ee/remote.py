"""Keys of users on other servers, asked of their servers over federation
(``POST /_matrix/federation/v1/user/keys/query`` and ``.../claim``): every server at
once, each within the request's timeout; a server that does not answer in time (or
answers an error) is listed under ``failures``, as the client-server spec has it.

What a server answers is kept only where it is about that server's own users, for the
users and devices asked for: a server cannot speak for another one's users.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections

from federation import peers
from matrixhs.errors import JsonDict, MatrixError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Servers asked at once by one request.
MAX_PARALLEL = 8
#: The spec's default for /keys/query and /keys/claim ``timeout``.
DEFAULT_TIMEOUT_MS = 10_000


@dataclass
class RemoteKeys:
    """What other servers answered to a /keys/query, merged, plus their failures."""

    device_keys: dict[str, JsonDict] = field(default_factory=dict)
    master_keys: dict[str, JsonDict] = field(default_factory=dict)
    self_signing_keys: dict[str, JsonDict] = field(default_factory=dict)
    failures: dict[str, JsonDict] = field(default_factory=dict)


def ask_all(
    requests: dict[str, Callable[[peers.FederationClient], T]], timeout_ms: int
) -> tuple[dict[str, T], dict[str, JsonDict]]:
    """Run the requests (one per server, or per user) in parallel; ``(answers, failures)``
    by the same keys."""
    answers: dict[str, T] = {}
    failures: dict[str, JsonDict] = {}
    if not requests:
        return answers, failures
    if not settings.MATRIXHS_FEDERATION_ENABLED:
        message = {"status": 503, "message": "Federation is disabled on this server"}
        return answers, {server: message for server in requests}
    client = peers.remote()

    def run(call: Callable[[peers.FederationClient], T]) -> T:
        try:
            return call(client)
        finally:
            close_old_connections()

    executor = ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(requests)))
    try:
        futures: dict[str, Future[T]] = {
            server: executor.submit(run, call) for server, call in requests.items()
        }
        timeout = (timeout_ms if timeout_ms > 0 else DEFAULT_TIMEOUT_MS) / 1000
        wait(futures.values(), timeout=timeout)
        for server, future in futures.items():
            if not future.done():
                future.cancel()
                failures[server] = {"status": 504, "message": "Timed out"}
                continue
            exc = future.exception()
            if exc is None:
                answers[server] = future.result()
                continue
            logger.info("Asking %s for keys failed: %s", server, exc)
            status = exc.status if isinstance(exc, MatrixError) else 503
            failures[server] = {"status": status, "message": str(exc)[:200]}
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    return answers, failures


def _own(answer: Any, part: str, users: dict[str, Any]) -> dict[str, Any]:
    """``answer[part]`` for the users asked about, when it is a map of objects."""
    section = answer.get(part) if isinstance(answer, dict) else None
    if not isinstance(section, dict):
        return {}
    return {u: v for u, v in section.items() if u in users and isinstance(v, dict)}


def device_keys_of(user_id: str, devices: dict[str, Any], wanted: list[str]) -> JsonDict:
    """The device keys of one user that are what they claim to be (and were asked for)."""
    return {
        device_id: keys
        for device_id, keys in devices.items()
        if isinstance(keys, dict)
        and keys.get("user_id") == user_id
        and keys.get("device_id") == device_id
        and (not wanted or device_id in wanted)
    }


def query_remote_keys(by_server: dict[str, dict[str, list[str]]], timeout_ms: int) -> RemoteKeys:
    """Device and cross-signing keys of remote users.

    Args:
        by_server: {server_name: {user_id: [device_id, ...] (empty: all devices)}}
        timeout_ms: how long to wait for the servers.
    """
    requests = {
        server: (lambda c, s=server, q=query: c.query_user_keys(s, q))
        for server, query in by_server.items()
    }
    answers, failures = ask_all(requests, timeout_ms)
    result = RemoteKeys(failures=failures)
    for server, answer in answers.items():
        asked = by_server[server]
        for user_id, devices in _own(answer, "device_keys", asked).items():
            result.device_keys[user_id] = device_keys_of(user_id, devices, asked[user_id])
        for part, target in (
            ("master_keys", result.master_keys),
            ("self_signing_keys", result.self_signing_keys),
        ):
            for user_id, key in _own(answer, part, asked).items():
                if key.get("user_id") == user_id:
                    target[user_id] = key
    return result


def claim_remote_keys(
    by_server: dict[str, dict[str, dict[str, str]]], timeout_ms: int
) -> tuple[dict[str, JsonDict], dict[str, JsonDict]]:
    """One-time keys of remote devices.

    Args:
        by_server: {server_name: {user_id: {device_id: algorithm}}}
        timeout_ms: how long to wait for the servers.

    Returns:
        ``(one_time_keys, failures)``: {user_id: {device_id: {key_id: key}}} and
        {server_name: failure}.
    """
    requests = {
        server: (lambda c, s=server, q=claims: c.claim_user_keys(s, q))
        for server, claims in by_server.items()
    }
    answers, failures = ask_all(requests, timeout_ms)
    keys: dict[str, JsonDict] = {}
    for server, answer in answers.items():
        asked = by_server[server]
        for user_id, devices in _own(answer, "one_time_keys", asked).items():
            keys[user_id] = {
                device_id: device_keys
                for device_id, device_keys in devices.items()
                if device_id in asked[user_id] and isinstance(device_keys, dict)
            }
    return keys, failures
