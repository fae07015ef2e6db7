from __future__ import annotations

from django.core.cache import cache
from django.test import override_settings

from matrixhs.testing import MatrixTestCase

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

    def test_login_limit_uses_forwarded_address_only_when_trusted(self) -> None:
        body = {"type": "m.login.password", "user": "alice", "password": "wrong"}
        for i in range(2):
            self.api().post(LOGIN, body, headers={"X-Forwarded-For": f"10.0.0.{i}"})
        self.assertEqual(self.api().post(LOGIN, body).status_code, 429)
        with self.settings(MATRIXHS_TRUST_X_FORWARDED_FOR=True):
            response = self.api().post(LOGIN, body, headers={"X-Forwarded-For": "10.9.9.9"})
            self.assertEqual(response.status_code, 403)

    @override_settings(MATRIXHS_RATELIMIT_ENABLED=False)
    def test_can_be_switched_off(self) -> None:
        for _ in range(5):
            response = self.api(self.alice).get(WHOAMI)
        self.assertEqual(response.status_code, 200)
        self.assertFalse(response.headers.has_header("X-RateLimit-Limit"))
