"""Where a server name is reached (server-server API "Resolving server names").

``resolve_server(name)`` answers where to connect (host and port), which name the
certificate must carry (and SNI), and the Host header, following the spec's steps:

1. An IP literal: that address, the given port or 8448.
2. A host name with an explicit port: that host and port.
3. ``https://<hostname>/.well-known/matrix/server`` (cached: its Cache-Control, between
   an hour and two days; a failure for an hour). Its ``m.server`` delegates to another
   name, itself resolved by steps 1, 2, 4, 5, 6 (never a second well-known), with that
   name as certificate name and Host header.
4. SRV ``_matrix-fed._tcp.<hostname>``, 5. then the deprecated ``_matrix._tcp``.
6. ``<hostname>:8448``.

The addresses themselves are resolved at connect time by matrixhs.outbound, which refuses
private and loopback ones unless allowed.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import re
from collections.abc import Callable

import httpx
from django.core.cache import cache

from matrixhs.protocol.ids import is_valid_server_name

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8448
WELL_KNOWN_MIN_S = 3600
WELL_KNOWN_MAX_S = 48 * 3600
WELL_KNOWN_DEFAULT_S = 24 * 3600
WELL_KNOWN_FAILURE_S = 3600
WELL_KNOWN_MAX_BYTES = 50_000

_MAX_AGE_RE = re.compile(r"max-age\s*=\s*(\d+)", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class ServerAddress:
    """Where to send a request for a server name.

    Attributes:
        host: the host (name or IP) to connect to.
        port: its port.
        tls_name: the name the certificate must be valid for (also sent as SNI).
        host_header: the Host header.
    """

    host: str
    port: int
    tls_name: str
    host_header: str


def split_server_name(name: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 literals in brackets) -> (host without brackets, port)."""
    if name.startswith("["):
        host, _, rest = name[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    host, sep, port = name.rpartition(":")
    if sep and port.isdigit():
        return host, int(port)
    return name, None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


SrvLookup = Callable[[str], list[tuple[str, int]]]
WellKnownFetch = Callable[[str], "str | None"]


def srv_lookup(name: str) -> list[tuple[str, int]]:
    """The (target, port) records of an SRV name, by priority then weight; [] if none."""
    import dns.exception
    import dns.resolver

    try:
        answer = dns.resolver.resolve(name, "SRV", lifetime=10)
    except (dns.exception.DNSException, OSError):
        return []
    records = sorted(answer, key=lambda r: (r.priority, -r.weight))  # type: ignore[attr-defined]
    found = []
    for record in records:
        target = str(record.target).rstrip(".")  # type: ignore[attr-defined]
        if target:  # "." means the service is not offered
            found.append((target, int(record.port)))  # type: ignore[attr-defined]
    return found


def fetch_well_known(hostname: str, client: httpx.Client) -> str | None:
    """The delegated server name from ``https://hostname/.well-known/matrix/server``,
    cached; None when there is none (or it is invalid)."""
    key = f"federation.well_known:{hostname}"
    cached = cache.get(key)
    if cached is not None:
        return str(cached) or None
    delegated, ttl = _fetch_well_known(hostname, client)
    cache.set(key, delegated or "", ttl)
    return delegated


def _fetch_well_known(hostname: str, client: httpx.Client) -> tuple[str | None, int]:
    try:
        response = client.get(f"https://{hostname}/.well-known/matrix/server")
    except httpx.HTTPError as exc:
        logger.debug("No .well-known for %s: %s", hostname, exc)
        return None, WELL_KNOWN_FAILURE_S
    if response.status_code != 200 or len(response.content) > WELL_KNOWN_MAX_BYTES:
        return None, WELL_KNOWN_FAILURE_S
    try:
        body = json.loads(response.content)
    except ValueError:
        return None, WELL_KNOWN_FAILURE_S
    delegated = body.get("m.server") if isinstance(body, dict) else None
    if not isinstance(delegated, str) or not is_valid_server_name(delegated):
        return None, WELL_KNOWN_FAILURE_S
    match = _MAX_AGE_RE.search(response.headers.get("cache-control", ""))
    ttl = int(match.group(1)) if match else WELL_KNOWN_DEFAULT_S
    return delegated, max(WELL_KNOWN_MIN_S, min(WELL_KNOWN_MAX_S, ttl))


def resolve_server(
    server_name: str,
    well_known: WellKnownFetch,
    srv: SrvLookup = srv_lookup,
) -> ServerAddress:
    """Where to reach ``server_name`` (see the module docstring).

    Raises:
        ValueError: not a valid server name.
    """
    if not is_valid_server_name(server_name):
        raise ValueError(f"Invalid server name {server_name!r}")
    hostname, port = split_server_name(server_name)
    if _is_ip(hostname) or port is not None:
        return ServerAddress(hostname, port or DEFAULT_PORT, hostname, server_name)
    delegated = well_known(hostname)
    if delegated is not None:
        d_host, d_port = split_server_name(delegated)
        if _is_ip(d_host) or d_port is not None:
            return ServerAddress(d_host, d_port or DEFAULT_PORT, d_host, delegated)
        return _by_srv(d_host, delegated, srv)
    return _by_srv(hostname, server_name, srv)


def _by_srv(hostname: str, host_header: str, srv: SrvLookup) -> ServerAddress:
    for prefix in ("_matrix-fed._tcp", "_matrix._tcp"):
        records = srv(f"{prefix}.{hostname}")
        if records:
            target, port = records[0]
            return ServerAddress(target, port, hostname, host_header)
    return ServerAddress(hostname, DEFAULT_PORT, hostname, host_header)
