from __future__ import annotations

import threading
from collections import Counter

from django.db import connection
from django.test import Client, TransactionTestCase
from django.test.utils import CaptureQueriesContext

from accounts.actions.devices import do_login_device
from accounts.actions.tokens import issue_tokens
from accounts.actions.users import do_register_user
from e2ee import queries
from e2ee.models import FallbackKey, OneTimeKey
from e2ee.tests.support import CLAIM, ClientDevice, E2eeTestCase
from matrixhs.testing import ApiClient


class KeysClaimTests(E2eeTestCase):
    def claim(self, claims: dict) -> dict:
        response = self.api(self.bob).post(CLAIM, {"one_time_keys": claims})
        self.assertEqual(response.status_code, 200, response.body)
        return response.body  # type: ignore[no-any-return]

    def alice_claim(self, algorithm: str = "signed_curve25519") -> dict:
        return self.claim({self.alice.user_id: {self.alice.test_device_id: algorithm}})

    def test_claim_hands_out_each_key_once_in_upload_order(self) -> None:
        device = self.device_of(self.alice)
        first = device.one_time_keys(1)
        second = device.one_time_keys(1)
        self.upload(self.alice, one_time_keys=first)
        self.upload(self.alice, one_time_keys=second)
        mine = self.alice_claim()["one_time_keys"][self.alice.user_id][device.device_id]
        self.assertEqual(mine, first)
        mine = self.alice_claim()["one_time_keys"][self.alice.user_id][device.device_id]
        self.assertEqual(mine, second)
        self.assertEqual(self.alice_claim(), {"one_time_keys": {}, "failures": {}})

    def test_claimed_key_is_the_uploaded_key_object(self) -> None:
        device = self.device_of(self.alice)
        keys = device.one_time_keys(1)
        self.upload(self.alice, one_time_keys=keys)
        claimed = self.alice_claim()["one_time_keys"][self.alice.user_id][device.device_id]
        self.assertEqual(claimed, keys)
        self.assertEqual(
            queries.one_time_key_counts(self.alice, device.device_id), {"signed_curve25519": 0}
        )

    def test_fallback_key_once_one_time_keys_run_out_and_marked_used(self) -> None:
        device = self.device_of(self.alice)
        fallback = device.fallback_key()
        self.upload(self.alice, one_time_keys=device.one_time_keys(1), fallback_keys=fallback)
        self.alice_claim()
        for _ in range(2):  # the fallback key is reused until replaced
            mine = self.alice_claim()["one_time_keys"][self.alice.user_id][device.device_id]
            self.assertEqual(mine, fallback)
        self.assertTrue(FallbackKey.objects.get().used)
        self.assertEqual(queries.unused_fallback_key_types(self.alice, device.device_id), [])

    def test_only_the_claimed_algorithm(self) -> None:
        device = self.device_of(self.alice)
        self.upload(
            self.alice,
            one_time_keys=device.one_time_keys(1, "curve25519"),
            fallback_keys=device.fallback_key(),
        )
        claimed = self.alice_claim("curve25519")["one_time_keys"]
        self.assertEqual(
            list(claimed[self.alice.user_id][device.device_id]), ["curve25519:AAAA0001"]
        )
        self.assertFalse(FallbackKey.objects.get().used)

    def test_unknown_users_and_devices_are_left_out(self) -> None:
        body = self.claim(
            {
                "@nobody:test.local": {"D": "signed_curve25519"},
                self.alice.user_id: {"NODEVICE": "signed_curve25519"},
                "invalid": {"D": "signed_curve25519"},
            }
        )
        self.assertEqual(body, {"one_time_keys": {}, "failures": {}})

    def test_remote_users_are_failures_of_their_server(self) -> None:
        body = self.claim({"@carol:remote.example": {"D": "signed_curve25519"}})
        self.assertEqual(list(body["failures"]), ["remote.example"])

    def test_bad_requests(self) -> None:
        api = self.api(self.bob)
        self.assert_matrix_error(api.post(CLAIM, {}), 400, "M_MISSING_PARAM")
        self.assert_matrix_error(api.post(CLAIM, {"one_time_keys": []}), 400, "M_BAD_JSON")
        for bad in (
            {self.alice.user_id: {self.alice.test_device_id: 1}},
            {self.alice.user_id: ["signed_curve25519"]},
        ):
            self.assert_matrix_error(api.post(CLAIM, {"one_time_keys": bad}), 400, "M_BAD_JSON")

    def test_query_count_does_not_grow_with_devices(self) -> None:
        device = self.device_of(self.alice)
        self.upload(
            self.alice, one_time_keys=device.one_time_keys(1), fallback_keys=device.fallback_key()
        )
        with CaptureQueriesContext(connection) as one:
            self.alice_claim()
            self.alice_claim()  # from the fallback key
        claims: dict = {}
        for user in (self.alice, self.bob, self.mallory):
            for n in range(3):
                extra = ClientDevice(user.user_id, f"EXTRA{n}")
                do_login_device(user, extra.device_id, None)
                token = issue_tokens(user, user.devices.get(device_id=extra.device_id), False)
                self.api(token=token["access_token"]).post(
                    "/_matrix/client/v3/keys/upload",
                    {
                        "one_time_keys": extra.one_time_keys(1),
                        "fallback_keys": extra.fallback_key(),
                    },
                )
                claims.setdefault(user.user_id, {})[extra.device_id] = "signed_curve25519"
        with CaptureQueriesContext(connection) as many:
            first = self.claim(claims)
            second = self.claim(claims)
        self.assertEqual(len(many), len(one))
        self.assertEqual(sum(len(d) for d in first["one_time_keys"].values()), 9)
        self.assertEqual(sum(len(d) for d in second["one_time_keys"].values()), 9)


class ConcurrentClaimTests(TransactionTestCase):
    """Many clients claim at once, each on its own database connection: no one-time key is
    handed out twice (on SQLite the writer lock serializes them; on PostgreSQL they race).

    Each thread has its own test client that does not re-raise exceptions: Django's test
    client records them through a process-wide signal, so with raising on, one thread
    could be handed another's exception.
    """

    keys = 30
    claimers = 8
    claims_each = 6

    def test_no_one_time_key_is_handed_out_twice(self) -> None:
        owner = do_register_user("owner", "pw")
        device = do_login_device(owner, "OWNERDEVICE", None)
        client = ClientDevice(owner.user_id, device.device_id)
        owner_token = issue_tokens(owner, device, False)["access_token"]
        upload = ApiClient(Client(), owner_token).post(
            "/_matrix/client/v3/keys/upload",
            {
                "one_time_keys": client.one_time_keys(self.keys),
                "fallback_keys": client.fallback_key(),
            },
        )
        self.assertEqual(upload.status_code, 200, upload.body)
        tokens = []
        for n in range(self.claimers):
            user = do_register_user(f"claimer{n}", "pw")
            device_n = do_login_device(user, None, None)
            tokens.append(issue_tokens(user, device_n, False)["access_token"])
        claimed: list[str] = []
        errors: list[BaseException] = []
        start = threading.Barrier(self.claimers)
        lock = threading.Lock()

        def claimer(token: str) -> None:
            try:
                api = ApiClient(Client(raise_request_exception=False), token)
                start.wait()
                for _ in range(self.claims_each):
                    key_ids = self._claim(api, owner.user_id, device.device_id)
                    with lock:
                        claimed.extend(key_ids)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=claimer, args=(t,)) for t in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        one_time = [key for key in claimed if key != "signed_curve25519:FALLBACK1"]
        duplicates = [key for key, n in Counter(one_time).items() if n > 1]
        self.assertEqual(duplicates, [])
        self.assertEqual(len(one_time), self.keys)
        self.assertEqual(len(claimed), self.claimers * self.claims_each)
        self.assertFalse(OneTimeKey.objects.exists())

    def _claim(self, api: ApiClient, user_id: str, device_id: str) -> list[str]:
        body = {"one_time_keys": {user_id: {device_id: "signed_curve25519"}}}
        for _ in range(100):
            response = api.post(CLAIM, body)
            if response.status_code == 500 and connection.vendor == "sqlite":
                # The shared-cache in-memory test database answers "table is locked" where a
                # database file would wait (busy_timeout); the claim rolled back: try again.
                continue
            self.assertEqual(response.status_code, 200, response.body)
            return list(response.body["one_time_keys"].get(user_id, {}).get(device_id, {}))
        raise AssertionError("the claim never got through")
