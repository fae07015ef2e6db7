from __future__ import annotations

from accounts.actions.devices import do_login_device
from accounts.actions.tokens import issue_tokens
from accounts.actions.users import do_register_user
from accounts.models import User
from e2ee import queries
from e2ee.models import CrossSigningKey
from e2ee.tests.support import SIGNING_UPLOAD, CrossSigning, E2eeTestCase
from matrixhs.streams import Stream, current_position
from matrixhs.testing import ApiClient

UNSTABLE = "/_matrix/client/unstable/keys/device_signing/upload"


class DeviceSigningUploadTests(E2eeTestCase):
    def uia_api(self, user: User) -> ApiClient:
        # The spec lists no 401 for this endpoint; the UIA answer has no errcode.
        return ApiClient(self.client, user.test_token, check_spec=False)  # type: ignore[attr-defined]

    def password_auth(self, session: str) -> dict:
        return {
            "type": "m.login.password",
            "session": session,
            "password": self.password,
            "identifier": {"type": "m.id.user", "user": self.alice.user_id},
        }

    def stored(self) -> dict[str, str]:
        return dict(
            CrossSigningKey.objects.filter(user=self.alice).values_list("key_type", "public_key")
        )

    def test_first_upload_needs_no_user_interactive_auth(self) -> None:
        signing = self.set_up_cross_signing(self.alice)
        self.assertEqual(
            self.stored(),
            {
                "master": signing.master_public,
                "self_signing": signing.ssk_public,
                "user_signing": signing.usk_public,
            },
        )

    def test_uploading_the_same_keys_again_needs_no_auth(self) -> None:
        signing = self.set_up_cross_signing(self.alice)
        position = current_position(Stream.DEVICE_LISTS)
        response = self.api(self.alice).post(SIGNING_UPLOAD, signing.upload_body())
        self.assertEqual((response.status_code, response.body), (200, {}))
        self.assertEqual(current_position(Stream.DEVICE_LISTS), position)

    def test_replacing_keys_needs_the_password(self) -> None:
        self.set_up_cross_signing(self.alice)
        new = CrossSigning(self.alice.user_id)
        first = self.uia_api(self.alice).post(SIGNING_UPLOAD, new.upload_body())
        self.assertEqual(first.status_code, 401)
        self.assertEqual(first.body["flows"], [{"stages": ["m.login.password"]}])
        self.assertNotEqual(self.stored()["master"], new.master_public)
        done = self.api(self.alice).post(
            SIGNING_UPLOAD, {**new.upload_body(), "auth": self.password_auth(first.body["session"])}
        )
        self.assertEqual(done.status_code, 200, done.body)
        self.assertEqual(self.stored()["master"], new.master_public)

    def test_a_new_self_signing_key_alone_needs_the_password_too(self) -> None:
        signing = self.set_up_cross_signing(self.alice)
        other = CrossSigning(self.alice.user_id)
        ssk = signing.sign_with(signing.master_key, {**other.self_signing(), "signatures": {}})
        response = self.uia_api(self.alice).post(SIGNING_UPLOAD, {"self_signing_key": ssk})
        self.assertEqual(response.status_code, 401)

    def test_self_signing_key_not_signed_by_the_master_key_is_refused(self) -> None:
        signing = CrossSigning(self.alice.user_id)
        other = CrossSigning(self.alice.user_id)
        body = {"master_key": signing.master(), "self_signing_key": other.self_signing()}
        response = self.api(self.alice).post(SIGNING_UPLOAD, body)
        self.assert_matrix_error(response, 400, "M_INVALID_SIGNATURE")
        self.assertEqual(self.stored(), {})

    def test_keys_are_checked_against_the_stored_master_key(self) -> None:
        signing = CrossSigning(self.alice.user_id)
        self.api(self.alice).post(SIGNING_UPLOAD, {"master_key": signing.master()})
        response = self.api(self.alice).post(
            SIGNING_UPLOAD, {"self_signing_key": CrossSigning(self.alice.user_id).self_signing()}
        )
        self.assert_matrix_error(response, 400, "M_INVALID_SIGNATURE")

    def test_signing_keys_without_any_master_key_are_refused(self) -> None:
        signing = CrossSigning(self.alice.user_id)
        response = self.api(self.alice).post(
            SIGNING_UPLOAD, {"self_signing_key": signing.self_signing()}
        )
        self.assert_matrix_error(response, 400, "M_MISSING_PARAM")

    def test_malformed_keys_are_refused(self) -> None:
        signing = CrossSigning(self.alice.user_id)
        master = signing.master()
        bad_keys = [
            {**master, "user_id": self.bob.user_id},
            {**master, "usage": ["self_signing"]},
            {**master, "keys": {}},
            {**master, "keys": {f"ed25519:{signing.master_public}": "other"}},
            {**master, "keys": {"ed25519:short": "short"}},
            {**master, "keys": {f"ed25519:{'!' * 43}": "!" * 43}},
            {**master, "signatures": "nope"},
        ]
        for bad in bad_keys:
            with self.subTest(bad=bad):
                response = self.api(self.alice).post(SIGNING_UPLOAD, {"master_key": bad})
                self.assert_matrix_error(response, 400, "M_INVALID_PARAM")
        self.assert_matrix_error(
            self.api(self.alice).post(SIGNING_UPLOAD, {"master_key": "x"}), 400, "M_BAD_JSON"
        )
        self.assertEqual(self.stored(), {})

    def test_a_public_key_may_not_be_a_device_id(self) -> None:
        signing = CrossSigning(self.alice.user_id)
        do_login_device(self.alice, signing.master_public, None)
        response = self.api(self.alice).post(SIGNING_UPLOAD, signing.upload_body())
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")

    def test_unstable_path(self) -> None:
        signing = CrossSigning(self.alice.user_id)
        api = ApiClient(self.client, self.alice.test_token, check_spec=False)  # type: ignore[attr-defined]
        self.assertEqual(api.post(UNSTABLE, signing.upload_body()).status_code, 200)
        self.assertEqual(self.stored()["master"], signing.master_public)

    def test_device_list_changes(self) -> None:
        start = current_position(Stream.DEVICE_LISTS)
        self.set_up_cross_signing(self.alice)
        end = current_position(Stream.DEVICE_LISTS)
        self.assertEqual(queries.device_list_changes(start, end), {self.alice.user_id})
        self.assertEqual(
            queries.signature_changes(self.alice.user_id, start, end), {self.alice.user_id}
        )
        self.assertEqual(queries.signature_changes(self.bob.user_id, start, end), set())

    def test_guests_may_not_upload(self) -> None:
        guest = do_register_user("guest1", None, guest=True)
        token = issue_tokens(guest, do_login_device(guest, None, None), False)["access_token"]
        signing = CrossSigning(guest.user_id)
        response = self.api(token=token).post(SIGNING_UPLOAD, signing.upload_body())
        self.assert_matrix_error(response, 403, "M_GUEST_ACCESS_FORBIDDEN")
