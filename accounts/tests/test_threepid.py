"""Third-party identifiers on a server without an identity service: none listed, adding
one refused with the spec's error, deleting and unbinding a no-op."""

from __future__ import annotations

from matrixhs.testing import MatrixTestCase

V3 = "/_matrix/client/v3"


class ThreepidTests(MatrixTestCase):
    def test_no_threepids_and_clear_refusals(self) -> None:
        api = self.api(self.alice)
        self.assertEqual(api.get(f"{V3}/account/3pid").body, {"threepids": []})
        body = {"client_secret": "s3cret", "email": "a@example.org", "send_attempt": 1}
        for path in (
            "account/3pid/email/requestToken",
            "account/password/email/requestToken",
            "register/email/requestToken",
        ):
            self.assert_matrix_error(
                self.api().post(f"{V3}/{path}", body), 403, "M_THREEPID_DENIED"
            )
        phone = {"client_secret": "s", "country": "GB", "phone_number": "1", "send_attempt": 1}
        self.assert_matrix_error(
            self.api().post(f"{V3}/register/msisdn/requestToken", phone), 403, "M_THREEPID_DENIED"
        )
        removed = api.post(f"{V3}/account/3pid/delete", {"medium": "email", "address": "a@b.c"})
        self.assertEqual(removed.body, {"id_server_unbind_result": "no-support"})
        unbound = api.post(f"{V3}/account/3pid/unbind", {"medium": "email", "address": "a@b.c"})
        self.assertEqual(unbound.body, {"id_server_unbind_result": "no-support"})

    def test_adding_and_binding_are_refused_clearly(self) -> None:
        api = self.api(self.alice)
        added = api.post(f"{V3}/account/3pid/add", {"client_secret": "s", "sid": "1"})
        self.assert_matrix_error(added, 400, "M_THREEPID_AUTH_FAILED")
        bind = {"client_secret": "s", "sid": "1", "id_server": "id.example", "id_access_token": "t"}
        self.assert_matrix_error(
            api.post(f"{V3}/account/3pid/bind", bind), 403, "M_SERVER_NOT_TRUSTED"
        )
