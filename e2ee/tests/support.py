"""The E2EE tests' case: users with a key-holding client device (``client_keys``)."""

from __future__ import annotations

from typing import Any

from e2ee.tests.client_keys import ClientDevice, CrossSigning, JsonDict
from matrixhs.testing import MatrixTestCase

UPLOAD = "/_matrix/client/v3/keys/upload"
QUERY = "/_matrix/client/v3/keys/query"
CLAIM = "/_matrix/client/v3/keys/claim"
SIGNING_UPLOAD = "/_matrix/client/v3/keys/device_signing/upload"
SIGNATURES_UPLOAD = "/_matrix/client/v3/keys/signatures/upload"


class E2eeTestCase(MatrixTestCase):
    """MatrixTestCase with a key-holding client device for alice, bob and mallory."""

    def setUp(self) -> None:
        super().setUp()
        self.devices = {
            user.user_id: ClientDevice(user.user_id, user.test_device_id)  # type: ignore[attr-defined]
            for user in (self.alice, self.bob, self.mallory)
        }

    def device_of(self, user: Any) -> ClientDevice:
        return self.devices[user.user_id]

    def upload(self, user: Any, **body: Any) -> JsonDict:
        response = self.api(user).post(UPLOAD, body)
        self.assertEqual(response.status_code, 200, response.body)
        return response.body  # type: ignore[no-any-return]

    def upload_device_keys(self, user: Any, one_time_keys: int = 0) -> ClientDevice:
        device = self.device_of(user)
        body: JsonDict = {"device_keys": device.device_keys()}
        if one_time_keys:
            body["one_time_keys"] = device.one_time_keys(one_time_keys)
        self.upload(user, **body)
        return device

    def query(self, user: Any, device_keys: JsonDict) -> JsonDict:
        response = self.api(user).post(QUERY, {"device_keys": device_keys})
        self.assertEqual(response.status_code, 200, response.body)
        return response.body  # type: ignore[no-any-return]

    def set_up_cross_signing(self, user: Any) -> CrossSigning:
        signing = CrossSigning(user.user_id)
        response = self.api(user).post(SIGNING_UPLOAD, signing.upload_body())
        self.assertEqual(response.status_code, 200, response.body)
        return signing
