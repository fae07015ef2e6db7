"""Outbound HTTP that never reaches addresses it must not (URL previews, federation).

Every connection the clients made here open goes through a network backend that resolves
the host itself, drops the addresses in MATRIXHS_OUTBOUND_IP_BLOCKLIST (loopback,
private, link-local, ... unless in MATRIXHS_OUTBOUND_IP_ALLOWLIST), and connects to an
address it has just checked. The check happens at connect time, for every connection:
the first request and each redirect alike, and a name that resolves elsewhere the second
time (DNS rebinding) is checked again, never trusted from an earlier answer. TLS still
verifies the certificate against the host name. Proxies from the environment are
ignored (a proxy would connect on our behalf, unchecked).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import httpcore
import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressBlocked(httpx.TransportError):
    """Every address of the host is in the blocklist."""


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def is_blocked(address: IPAddress, allow_extra: Sequence[str] = ()) -> bool:
    """Whether an outbound connection to ``address`` is refused (an IPv4-mapped IPv6
    address is judged as the IPv4 address it carries). ``allow_extra``: networks allowed
    besides MATRIXHS_OUTBOUND_IP_ALLOWLIST (federation's own allowlist)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    allow = _networks((*settings.MATRIXHS_OUTBOUND_IP_ALLOWLIST, *allow_extra))
    if any(address in net for net in allow if net.version == address.version):
        return False
    block = _networks(tuple(settings.MATRIXHS_OUTBOUND_IP_BLOCKLIST))
    return any(address in net for net in block if net.version == address.version)


def allowed_addresses(
    host: str, infos: Iterable[tuple[Any, ...]], allow_extra: Sequence[str] = ()
) -> list[str]:
    """The resolved addresses of ``host`` that may be reached, in resolver order.

    Raises:
        AddressBlocked: none may.
    """
    allowed: list[str] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if not is_blocked(address, allow_extra) and str(address) not in allowed:
            allowed.append(str(address))
    if not allowed:
        raise AddressBlocked(f"{host}: address not allowed for outbound requests")
    return allowed


def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
    """The host's addresses (one resolution per connection; tests replace it)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _connect_error(host: str, exc: Exception | None) -> Exception:
    return exc or httpcore.ConnectError(f"{host}: no address")


class FilteringBackend(httpcore.SyncBackend):
    """httpcore's socket backend, connecting only to checked addresses."""

    def __init__(self, allow_extra: Sequence[str] = ()) -> None:
        self.allow_extra = tuple(allow_extra)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host}: {exc}") from exc
        last: Exception | None = None
        for address in allowed_addresses(host, infos, self.allow_extra):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise _connect_error(host, last)


class AsyncFilteringBackend(httpcore.AnyIOBackend):
    """The same, for async clients."""

    def __init__(self, allow_extra: Sequence[str] = ()) -> None:
        self.allow_extra = tuple(allow_extra)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await asyncio.to_thread(resolve, host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host}: {exc}") from exc
        last: Exception | None = None
        for address in allowed_addresses(host, infos, self.allow_extra):
            try:
                return await super().connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
        raise _connect_error(host, last)


class FilteringTransport(httpx.HTTPTransport):
    """httpx's transport with its connection pool on :class:`FilteringBackend`."""

    def __init__(
        self, verify: ssl.SSLContext | bool = True, allow_extra: Sequence[str] = ()
    ) -> None:
        super().__init__(verify=verify, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            network_backend=FilteringBackend(allow_extra),
        )


class AsyncFilteringTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self, verify: ssl.SSLContext | bool = True, allow_extra: Sequence[str] = ()
    ) -> None:
        super().__init__(verify=verify, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            network_backend=AsyncFilteringBackend(allow_extra),
        )


def outbound_client(
    verify: ssl.SSLContext | bool = True, allow_extra: Sequence[str] = (), **kwargs: Any
) -> httpx.Client:
    """An httpx client whose every connection is checked (see the module docstring)."""
    return httpx.Client(
        transport=FilteringTransport(verify, allow_extra), trust_env=False, **kwargs
    )


def async_outbound_client(verify: ssl.SSLContext | bool = True, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=AsyncFilteringTransport(verify), trust_env=False, **kwargs)
