from __future__ import annotations

from accounts.models import User
from e2ee.models import CrossSigningSignature
from e2ee.tests.support import SIGNATURES_UPLOAD, SIGNING_UPLOAD, CrossSigning, E2eeTestCase
from matrixhs.testing import ApiClient

UNSTABLE = "/_matrix/client/unstable/keys/signatures/upload"


class SignaturesUploadTests(E2eeTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.device = self.upload_device_keys(self.alice)
        self.signing = self.set_up_cross_signing(self.alice)

    def upload_signatures(self, body: dict, user: User | None = None) -> dict:
        response = self.api(user or self.alice).post(SIGNATURES_UPLOAD, body)
        self.assertEqual(response.status_code, 200, response.body)
        return response.body["failures"]  # type: ignore[no-any-return]

    def test_own_device_signed_by_the_self_signing_key(self) -> None:
        signed = self.signing.sign_with(self.signing.ssk, self.device.device_keys())
        failures = self.upload_signatures({self.alice.user_id: {self.device.device_id: signed}})
        self.assertEqual(failures, {})
        row = CrossSigningSignature.objects.get()
        self.assertEqual(
            (row.target_key_id, row.signing_key_id),
            (self.device.device_id, f"ed25519:{self.signing.ssk_public}"),
        )

    def test_own_master_key_signed_by_a_device(self) -> None:
        signed = self.device.sign(self.signing.master())
        failures = self.upload_signatures(
            {self.alice.user_id: {self.signing.master_public: signed}}
        )
        self.assertEqual(failures, {})
        master = self.query(self.bob, {self.alice.user_id: []})["master_keys"][self.alice.user_id]
        self.assertEqual(
            master["signatures"][self.alice.user_id], signed["signatures"][self.alice.user_id]
        )

    def test_master_key_signed_by_an_unknown_device_fails(self) -> None:
        other = CrossSigning(self.alice.user_id)
        signed = other.sign_with(other.ssk, self.signing.master())
        failures = self.upload_signatures(
            {self.alice.user_id: {self.signing.master_public: signed}}
        )
        self.assertEqual(
            failures[self.alice.user_id][self.signing.master_public]["errcode"],
            "M_INVALID_SIGNATURE",
        )

    def test_other_users_master_key_signed_by_the_user_signing_key(self) -> None:
        bob = self.set_up_cross_signing(self.bob)
        signed = self.signing.sign_with(self.signing.usk, bob.master())
        failures = self.upload_signatures({self.bob.user_id: {bob.master_public: signed}})
        self.assertEqual(failures, {})
        row = CrossSigningSignature.objects.get()
        self.assertEqual(
            (row.signer_user_id, row.target_user_id), (self.alice.user_id, self.bob.user_id)
        )

    def test_bad_signatures_fail_alone_and_the_rest_is_stored(self) -> None:
        bob = self.set_up_cross_signing(self.bob)
        good = self.signing.sign_with(self.signing.usk, bob.master())
        forged = self.signing.sign_with(self.signing.ssk, self.device.device_keys())
        forged["signatures"][self.alice.user_id][f"ed25519:{self.signing.ssk_public}"] = "A" * 86
        failures = self.upload_signatures(
            {
                self.alice.user_id: {self.device.device_id: forged},
                self.bob.user_id: {bob.master_public: good},
            }
        )
        self.assertEqual(
            failures[self.alice.user_id][self.device.device_id]["errcode"], "M_INVALID_SIGNATURE"
        )
        self.assertEqual(list(failures), [self.alice.user_id])
        self.assertEqual(CrossSigningSignature.objects.get().target_user_id, self.bob.user_id)

    def test_a_copy_that_differs_from_the_stored_key_fails(self) -> None:
        keys = self.device.device_keys()
        keys["algorithms"] = ["m.other"]
        signed = self.signing.sign_with(self.signing.ssk, keys)
        failures = self.upload_signatures({self.alice.user_id: {self.device.device_id: signed}})
        error = failures[self.alice.user_id][self.device.device_id]
        self.assertEqual(error["errcode"], "M_UNKNOWN")
        self.assertFalse(CrossSigningSignature.objects.exists())

    def test_unknown_devices_and_keys_fail(self) -> None:
        bob = CrossSigning(self.bob.user_id)  # never uploaded
        bob_master = self.signing.sign_with(self.signing.usk, bob.master())
        failures = self.upload_signatures(
            {
                self.alice.user_id: {"NOSUCHDEVICE": self.device.device_keys()},
                self.bob.user_id: {bob.master_public: bob_master},
                "@carol:remote.example": {"KEY": {"signatures": {}}},
            }
        )
        self.assertEqual(failures[self.alice.user_id]["NOSUCHDEVICE"]["errcode"], "M_NOT_FOUND")
        self.assertEqual(failures[self.bob.user_id][bob.master_public]["errcode"], "M_NOT_FOUND")
        self.assertEqual(failures["@carol:remote.example"]["KEY"]["errcode"], "M_NOT_FOUND")

    def test_without_a_self_signing_key_device_signatures_fail(self) -> None:
        device = self.upload_device_keys(self.bob)
        failures = self.upload_signatures(
            {self.bob.user_id: {device.device_id: device.device_keys()}}, user=self.bob
        )
        self.assertEqual(failures[self.bob.user_id][device.device_id]["errcode"], "M_NOT_FOUND")

    def test_the_same_signature_twice_is_stored_once(self) -> None:
        signed = self.signing.sign_with(self.signing.ssk, self.device.device_keys())
        body = {self.alice.user_id: {self.device.device_id: signed}}
        self.upload_signatures(body)
        self.assertEqual(self.upload_signatures(body), {})
        self.assertEqual(CrossSigningSignature.objects.count(), 1)

    def test_malformed_bodies(self) -> None:
        api = self.api(self.alice)
        self.assert_matrix_error(api.post(SIGNATURES_UPLOAD, raw=b"[]"), 400, "M_BAD_JSON")
        self.assert_matrix_error(
            api.post(SIGNATURES_UPLOAD, {self.alice.user_id: "x"}), 400, "M_INVALID_PARAM"
        )
        self.assert_matrix_error(
            api.post(SIGNATURES_UPLOAD, {self.alice.user_id: {"D": 1}}), 400, "M_INVALID_PARAM"
        )

    def test_unstable_path(self) -> None:
        signed = self.signing.sign_with(self.signing.ssk, self.device.device_keys())
        api = ApiClient(self.client, self.alice.test_token, check_spec=False)  # type: ignore[attr-defined]
        response = api.post(UNSTABLE, {self.alice.user_id: {self.device.device_id: signed}})
        self.assertEqual((response.status_code, response.body), (200, {"failures": {}}))

    def test_replacing_the_self_signing_key_drops_its_signatures(self) -> None:
        signed = self.signing.sign_with(self.signing.ssk, self.device.device_keys())
        self.upload_signatures({self.alice.user_id: {self.device.device_id: signed}})
        new = CrossSigning(self.alice.user_id)
        new.master_key, new.master_public = self.signing.master_key, self.signing.master_public
        uia_api = ApiClient(self.client, self.alice.test_token, check_spec=False)  # type: ignore[attr-defined]
        first = uia_api.post(SIGNING_UPLOAD, {"self_signing_key": new.self_signing()})
        auth = {
            "type": "m.login.password",
            "session": first.body["session"],
            "password": self.password,
            "identifier": {"type": "m.id.user", "user": "alice"},
        }
        response = self.api(self.alice).post(
            SIGNING_UPLOAD, {"self_signing_key": new.self_signing(), "auth": auth}
        )
        self.assertEqual(response.status_code, 200, response.body)
        self.assertFalse(CrossSigningSignature.objects.exists())
