"""Keys of users on other servers: the place federation plugs into.

There is no federation client yet, so every server asked about is reported under
``failures`` (as the spec has it for a server that could not be reached), and the
request's local part is answered normally. Once federation exists, these two functions
ask the servers (``POST /_matrix/federation/v1/user/keys/query`` and ``.../claim``) in
parallel within ``timeout_ms`` and keep the failures for the servers that did not answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from matrixhs.errors import JsonDict


@dataclass
class RemoteKeys:
    """What other servers answered to a /keys/query, merged, plus their failures."""

    device_keys: dict[str, JsonDict] = field(default_factory=dict)
    master_keys: dict[str, JsonDict] = field(default_factory=dict)
    self_signing_keys: dict[str, JsonDict] = field(default_factory=dict)
    failures: dict[str, JsonDict] = field(default_factory=dict)


def _unreachable() -> JsonDict:
    return {"status": 503, "message": "Federation is not available on this server"}


def query_remote_keys(by_server: dict[str, dict[str, list[str]]], timeout_ms: int) -> RemoteKeys:
    """Device and cross-signing keys of remote users.

    Args:
        by_server: {server_name: {user_id: [device_id, ...] (empty: all devices)}}
        timeout_ms: how long to wait for the servers.
    """
    return RemoteKeys(failures={server: _unreachable() for server in by_server})


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
    return {}, {server: _unreachable() for server in by_server}
