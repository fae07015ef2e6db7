from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.actions.devices import do_login_device, do_rename_device
from accounts.actions.tokens import issue_tokens
from accounts.models import User
from e2ee.tests.support import QUERY, SIGNATURES_UPLOAD, ClientDevice, E2eeTestCase


class KeysQueryTests(E2eeTestCase):
    def test_all_devices_of_a_user(self) -> None:
        device = self.upload_device_keys(self.alice)
        body = self.query(self.bob, {self.alice.user_id: []})
        keys = body["device_keys"][self.alice.user_id][device.device_id]
        self.assertEqual(keys["keys"], device.device_keys()["keys"])
        self.assertEqual(keys["signatures"], device.device_keys()["signatures"])
        self.assertEqual(keys["unsigned"], {"device_display_name": "test device"})
        self.assertEqual(body["failures"], {})

    def test_listed_devices_only(self) -> None:
        self.upload_device_keys(self.alice)
        second = self.add_device(self.alice, "SECOND")
        body = self.query(self.bob, {self.alice.user_id: ["SECOND", "UNKNOWN"]})
        self.assertEqual(list(body["device_keys"][self.alice.user_id]), [second.device_id])

    def test_devices_without_keys_are_left_out(self) -> None:
        do_login_device(self.alice, "NOKEYS", None)
        body = self.query(self.bob, {self.alice.user_id: [], self.mallory.user_id: []})
        self.assertEqual(body["device_keys"], {self.alice.user_id: {}, self.mallory.user_id: {}})

    def test_display_name_follows_renames(self) -> None:
        device = self.upload_device_keys(self.alice)
        do_rename_device(self.alice.devices.get(device_id=device.device_id), None)
        body = self.query(self.bob, {self.alice.user_id: []})
        self.assertNotIn("unsigned", body["device_keys"][self.alice.user_id][device.device_id])

    def test_invalid_user_ids_are_ignored(self) -> None:
        body = self.query(self.bob, {"@": [], "not-a-user": []})
        self.assertEqual(body["device_keys"], {})

    def test_remote_users_are_failures_of_their_server(self) -> None:
        body = self.query(self.bob, {"@carol:remote.example": [], self.alice.user_id: []})
        self.assertEqual(list(body["failures"]), ["remote.example"])
        self.assertEqual(body["device_keys"], {self.alice.user_id: {}})

    def test_bad_requests(self) -> None:
        api = self.api(self.bob)
        self.assert_matrix_error(api.post(QUERY, {}), 400, "M_MISSING_PARAM")
        self.assert_matrix_error(api.post(QUERY, {"device_keys": []}), 400, "M_BAD_JSON")
        self.assert_matrix_error(
            api.post(QUERY, {"device_keys": {self.alice.user_id: {"D1": True}}}), 400, "M_BAD_JSON"
        )
        self.assert_matrix_error(
            api.post(QUERY, {"device_keys": {self.alice.user_id: [1]}}), 400, "M_BAD_JSON"
        )

    def test_query_count_does_not_grow_with_users_and_devices(self) -> None:
        self.upload_device_keys(self.alice)
        self.set_up_cross_signing(self.alice)
        with CaptureQueriesContext(connection) as one_user:
            self.query(self.bob, {self.alice.user_id: []})
        for user in (self.bob, self.mallory):
            self.upload_device_keys(user)
            self.set_up_cross_signing(user)
            self.add_device(user, "EXTRA")
        users = (self.alice, self.bob, self.mallory)
        everyone: dict[str, list[str]] = {u.user_id: [] for u in users}
        everyone[self.bob.user_id] = ["EXTRA", self.bob.test_device_id]
        with CaptureQueriesContext(connection) as three_users:
            body = self.query(self.bob, everyone)
        self.assertEqual(len(three_users), len(one_user))
        self.assertEqual(len(body["device_keys"][self.bob.user_id]), 2)
        self.assertEqual(len(body["master_keys"]), 3)

    def add_device(self, user: User, device_id: str) -> ClientDevice:
        device = do_login_device(user, device_id, None)
        token = issue_tokens(user, device, False)["access_token"]
        client = ClientDevice(user.user_id, device_id)
        response = self.api(token=token).post(
            "/_matrix/client/v3/keys/upload", {"device_keys": client.device_keys()}
        )
        self.assertEqual(response.status_code, 200, response.body)
        return client


class CrossSigningVisibilityTests(E2eeTestCase):
    """Spec "Key and signature security": who sees which cross-signing keys and
    signatures."""

    def test_master_and_self_signing_keys_for_all_user_signing_key_for_self(self) -> None:
        signing = self.set_up_cross_signing(self.alice)
        for asker in (self.alice, self.bob):
            body = self.query(asker, {self.alice.user_id: []})
            self.assertEqual(body["master_keys"][self.alice.user_id], signing.master())
            self.assertEqual(body["self_signing_keys"][self.alice.user_id], signing.self_signing())
            expected = {self.alice.user_id: signing.user_signing()} if asker is self.alice else {}
            self.assertEqual(body["user_signing_keys"], expected)

    def test_user_signing_signatures_are_seen_by_their_signer_only(self) -> None:
        alice = self.set_up_cross_signing(self.alice)
        bob = self.set_up_cross_signing(self.bob)
        signed = alice.sign_with(alice.usk, bob.master())
        response = self.api(self.alice).post(
            SIGNATURES_UPLOAD, {self.bob.user_id: {bob.master_public: signed}}
        )
        self.assertEqual(response.body["failures"], {})
        key_id = f"ed25519:{alice.usk_public}"
        seen = self.query(self.alice, {self.bob.user_id: []})["master_keys"][self.bob.user_id]
        self.assertEqual(
            seen["signatures"][self.alice.user_id][key_id],
            signed["signatures"][self.alice.user_id][key_id],
        )
        for asker in (self.bob, self.mallory):
            master = self.query(asker, {self.bob.user_id: []})["master_keys"][self.bob.user_id]
            self.assertNotIn(self.alice.user_id, master.get("signatures", {}))

    def test_device_signatures_by_the_self_signing_key_are_seen_by_all(self) -> None:
        device = self.upload_device_keys(self.alice)
        alice = self.set_up_cross_signing(self.alice)
        signed = alice.sign_with(alice.ssk, device.device_keys())
        response = self.api(self.alice).post(
            SIGNATURES_UPLOAD, {self.alice.user_id: {device.device_id: signed}}
        )
        self.assertEqual(response.body["failures"], {})
        for asker in (self.alice, self.bob):
            keys = self.query(asker, {self.alice.user_id: []})["device_keys"]
            sigs = keys[self.alice.user_id][device.device_id]["signatures"][self.alice.user_id]
            self.assertEqual(set(sigs), {device.key_id, f"ed25519:{alice.ssk_public}"})
