"""matrixhs.outbound: outbound requests never reach blocked addresses, checked after DNS
resolution, on every redirect and at every connect."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from unittest import mock

import httpx
from django.test import SimpleTestCase, override_settings

from matrixhs.outbound import (
    AddressBlocked,
    allowed_addresses,
    async_outbound_client,
    is_blocked,
    outbound_client,
)
from matrixhs.tests.http_server import local_server

LOOPBACK_ONLY = ["127.0.0.1/32"]


def ok() -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "text/plain"}, b"reached"


class OutboundFilterTest(SimpleTestCase):
    def test_loopback_is_blocked_by_default(self) -> None:
        with local_server({"/": ok}) as server, outbound_client() as client:
            with self.assertRaises(AddressBlocked):
                client.get(server.url("/"))
            self.assertEqual(server.hits, {})

    @override_settings(MATRIXHS_OUTBOUND_IP_ALLOWLIST=LOOPBACK_ONLY)
    def test_allowlisted_address_is_reached(self) -> None:
        with local_server({"/": ok}) as server, outbound_client() as client:
            self.assertEqual(client.get(server.url("/")).text, "reached")

    def test_name_is_checked_after_resolution(self) -> None:
        with local_server({"/": ok}) as server, outbound_client() as client:
            with self.assertRaises(AddressBlocked):
                client.get(server.url("/", host="localhost"))
            self.assertEqual(server.hits, {})

    @override_settings(MATRIXHS_OUTBOUND_IP_ALLOWLIST=LOOPBACK_ONLY)
    def test_redirect_to_blocked_address_is_refused(self) -> None:
        with local_server({}) as server:

            def redirect() -> tuple[int, dict[str, str], bytes]:
                return 302, {"Location": server.url("/", host="127.0.0.2")}, b""

            server.routes = {"/go": redirect, "/": ok}
            with outbound_client(follow_redirects=True) as client:
                with self.assertRaises(AddressBlocked):
                    client.get(server.url("/go"))
            self.assertEqual(server.hits, {"/go": 1})

    @override_settings(MATRIXHS_OUTBOUND_IP_ALLOWLIST=LOOPBACK_ONLY)
    def test_each_connection_resolves_and_checks_again(self) -> None:
        """DNS rebinding: the name answered an allowed address, then a blocked one."""
        with local_server({"/": ok}) as server, outbound_client() as client:
            answers = iter(["127.0.0.1", "127.0.0.2"])

            def resolve(host: str, port: int) -> list[tuple]:
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

            with mock.patch("matrixhs.outbound.resolve", side_effect=resolve):
                url = server.url("/", host="rebind.test")
                self.assertEqual(client.get(url).text, "reached")
                with self.assertRaises(AddressBlocked):
                    client.get(url)
            self.assertEqual(server.hits, {"/": 1})

    @override_settings(MATRIXHS_OUTBOUND_IP_ALLOWLIST=LOOPBACK_ONLY)
    def test_connects_to_the_address_it_checked(self) -> None:
        """The name is resolved once, by the filter: the connection goes to that address."""
        with local_server({"/": ok}) as server, outbound_client() as client:

            def resolve(host: str, port: int) -> list[tuple]:
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

            with mock.patch("matrixhs.outbound.resolve", side_effect=resolve):
                self.assertEqual(client.get(server.url("/", host="only.in.mock")).text, "reached")

    def test_blocked_addresses_are_dropped_from_an_answer(self) -> None:
        infos = [
            (0, 0, 0, "", ("10.1.2.3", 80)),
            (0, 0, 0, "", ("93.184.215.14", 80)),
            (0, 0, 0, "", ("fe80::1%eth0", 80, 0, 0)),
        ]
        self.assertEqual(allowed_addresses("h", infos), ["93.184.215.14"])
        with self.assertRaises(AddressBlocked):
            allowed_addresses("h", infos[:1])

    def test_default_blocklist(self) -> None:
        for address in (
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",  # noqa: S104  (an address to judge, not to bind)
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ):
            self.assertTrue(is_blocked(ipaddress.ip_address(address)), address)
        for address in ("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"):
            self.assertFalse(is_blocked(ipaddress.ip_address(address)), address)

    @override_settings(MATRIXHS_OUTBOUND_IP_BLOCKLIST=["93.184.0.0/16"])
    def test_blocklist_is_a_setting(self) -> None:
        self.assertTrue(is_blocked(ipaddress.ip_address("93.184.215.14")))
        self.assertFalse(is_blocked(ipaddress.ip_address("127.0.0.1")))

    def test_environment_proxies_are_ignored(self) -> None:
        with (
            local_server({"/": ok}) as server,
            mock.patch.dict(
                "os.environ", {"HTTP_PROXY": "http://93.184.215.14:1", "ALL_PROXY": ""}
            ),
            outbound_client() as client,
        ):
            with self.assertRaises(AddressBlocked):
                client.get(server.url("/"))

    def test_async_client_is_filtered_too(self) -> None:
        async def fetch(url: str) -> str:
            async with async_outbound_client() as client:
                return (await client.get(url)).text

        with local_server({"/": ok}) as server:
            with self.assertRaises(AddressBlocked):
                asyncio.run(fetch(server.url("/")))
            with override_settings(MATRIXHS_OUTBOUND_IP_ALLOWLIST=LOOPBACK_ONLY):
                self.assertEqual(asyncio.run(fetch(server.url("/"))), "reached")

    def test_blocked_is_an_httpx_transport_error(self) -> None:
        self.assertTrue(issubclass(AddressBlocked, httpx.TransportError))
