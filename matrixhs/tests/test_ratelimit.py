from __future__ import annotations

from unittest import mock

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase, TransactionTestCase, override_settings

from matrixhs.management.commands.serve import Command as ServeCommand
from matrixhs.settings import _parse_proxies
from matrixhs.testing import MatrixTestCase, asgi_request

WHOAMI = "/_matrix/client/v3/account/whoami"
LOGIN = "/_matrix/client/v3/login"


@override_settings(
    MATRIXHS_RATELIMIT_ENABLED=True,
    MATRIXHS_RATELIMITS={"client": (3, 60), "auth": (2, 60)},
)
class RateLimitTests(MatrixTestCase):
    def setUp(self) -> None:
        super().setUp()
        cache.clear()

    def test_headers_count_down_then_429_with_retry_after(self) -> None:
        self.assertEqual(self.api(self.bob).get(WHOAMI).headers["X-RateLimit-Limit"], "3")
        remaining = [
            int(self.api(self.alice).get(WHOAMI).headers["X-RateLimit-Remaining"]) for _ in range(3)
        ]
        self.assertEqual(remaining, [2, 1, 0])
        response = self.api(self.alice).get(WHOAMI)
        self.assert_matrix_error(response, 429, "M_LIMIT_EXCEEDED")
        self.assertGreater(response.body["retry_after_ms"], 0)
        self.assertGreaterEqual(int(response.headers["Retry-After"]), 1)

    def test_limits_are_per_user(self) -> None:
        for _ in range(3):
            self.api(self.alice).get(WHOAMI)
        self.assertEqual(self.api(self.bob).get(WHOAMI).status_code, 200)

    def test_login_is_limited_per_ip_more_strictly(self) -> None:
        body = {"type": "m.login.password", "user": "alice", "password": "wrong"}
        statuses = [self.api().post(LOGIN, body).status_code for _ in range(3)]
        self.assertEqual(statuses, [403, 403, 429])

    @override_settings(MATRIXHS_RATELIMIT_ENABLED=False)
    def test_can_be_switched_off(self) -> None:
        for _ in range(5):
            response = self.api(self.alice).get(WHOAMI)
        self.assertEqual(response.status_code, 200)
        self.assertFalse(response.headers.has_header("X-RateLimit-Limit"))


PROXY = ("10.0.0.1", 40000)
BAD_LOGIN = {"type": "m.login.password", "user": "nobody", "password": "wrong"}


@override_settings(
    MATRIXHS_RATELIMIT_ENABLED=True,
    MATRIXHS_RATELIMITS={"client": (3, 60), "auth": (2, 60)},
    MATRIXHS_TRUSTED_PROXIES=["10.0.0.0/24"],
)
class ForwardedForTests(TransactionTestCase):
    """The client address behind a reverse proxy, through the whole ASGI application."""

    def setUp(self) -> None:
        cache.clear()

    async def login(self, client: tuple[str, int], forwarded_for: str | None) -> int:
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
        response = await asgi_request("POST", LOGIN, BAD_LOGIN, headers=headers, client=client)
        return response.status_code

    async def test_spoofed_leftmost_entries_do_not_escape_the_limit(self) -> None:
        statuses = [await self.login(PROXY, f"192.0.2.{i}, 203.0.113.7") for i in range(3)]
        self.assertEqual(statuses, [403, 403, 429])

    async def test_clients_behind_the_proxy_are_limited_apart(self) -> None:
        for _ in range(2):
            await self.login(PROXY, "203.0.113.7")
        self.assertEqual(await self.login(PROXY, "203.0.113.7"), 429)
        self.assertEqual(await self.login(PROXY, "203.0.113.8"), 403)
        # A chain of trusted proxies: the client is the first address they did not add.
        self.assertEqual(await self.login(("10.0.0.2", 1), "203.0.113.9, 10.0.0.3"), 403)
        self.assertEqual(await self.login(("10.0.0.2", 1), "203.0.113.7, 10.0.0.3"), 429)

    async def test_untrusted_peers_cannot_forward(self) -> None:
        client = ("198.51.100.1", 5000)
        statuses = [await self.login(client, f"203.0.113.{i}") for i in range(3)]
        self.assertEqual(statuses, [403, 403, 429])

    @override_settings(MATRIXHS_TRUSTED_PROXIES=[])
    async def test_no_trusted_proxy_ignores_the_header(self) -> None:
        statuses = [await self.login(PROXY, f"203.0.113.{i}") for i in range(3)]
        self.assertEqual(statuses, [403, 403, 429])


class ProxySettingTests(SimpleTestCase):
    def test_addresses_and_networks_parse(self) -> None:
        self.assertEqual(
            _parse_proxies("127.0.0.1, 10.0.0.0/8,::1"), ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
        )

    def test_wildcards_and_names_are_refused(self) -> None:
        for raw in ("*", "proxy.example.org", "10.0.0.0/33"):
            with self.subTest(raw=raw), self.assertRaises(ValueError):
                _parse_proxies(raw)

    def test_the_old_setting_refuses_to_start(self) -> None:
        import importlib

        import matrixhs.settings

        with (
            mock.patch.dict("os.environ", {"MATRIXHS_TRUST_X_FORWARDED_FOR": "true"}),
            self.assertRaises(ImproperlyConfigured),
        ):
            importlib.reload(matrixhs.settings)
        importlib.reload(matrixhs.settings)

    def test_uvicorn_does_not_apply_the_headers_a_second_time(self) -> None:
        with mock.patch("uvicorn.run") as run, override_settings(MATRIXHS_ASGI_SERVER="uvicorn"):
            ServeCommand()._run_asgi_server("127.0.0.1", 8008)
        self.assertIs(run.call_args.kwargs["proxy_headers"], False)
