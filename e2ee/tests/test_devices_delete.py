"""Deleting devices (DELETE /devices/{deviceId}, POST /delete_devices, logout) takes their
E2EE state with them."""

from __future__ import annotations

from accounts.actions.devices import do_delete_devices, do_login_device
from accounts.actions.tokens import issue_tokens
from e2ee import queries
from e2ee.models import (
    CrossSigningSignature,
    DeviceKeys,
    FallbackKey,
    OneTimeKey,
    ToDeviceMessage,
    ToDeviceTransaction,
)
from e2ee.tests.support import SIGNATURES_UPLOAD, ClientDevice, E2eeTestCase
from matrixhs.streams import Stream, current_position


class DeleteDevicesTests(E2eeTestCase):
    def test_deleted_device_loses_its_keys_inbox_and_signatures(self) -> None:
        device = self.device_of(self.alice)
        self.upload(
            self.alice,
            device_keys=device.device_keys(),
            one_time_keys=device.one_time_keys(2),
            fallback_keys=device.fallback_key(),
        )
        signing = self.set_up_cross_signing(self.alice)
        signed = signing.sign_with(signing.ssk, device.device_keys())
        self.api(self.alice).post(
            SIGNATURES_UPLOAD, {self.alice.user_id: {device.device_id: signed}}
        )
        self.api(self.alice).put(
            "/_matrix/client/v3/sendToDevice/m.test/t1",
            {"messages": {self.alice.user_id: {"*": {"x": 1}}}},
        )
        self.api(self.bob).put(
            "/_matrix/client/v3/sendToDevice/m.test/t1",
            {"messages": {self.alice.user_id: {"*": {"x": 2}}}},
        )
        start = current_position(Stream.DEVICE_LISTS)
        response = self.api(self.alice).post("/_matrix/client/v3/logout")
        self.assertEqual(response.status_code, 200)
        for model in (DeviceKeys, OneTimeKey, FallbackKey, ToDeviceMessage, CrossSigningSignature):
            self.assertFalse(model.objects.exists(), model.__name__)
        self.assertFalse(ToDeviceTransaction.objects.filter(user=self.alice).exists())
        self.assertTrue(ToDeviceTransaction.objects.filter(user=self.bob).exists())
        end = current_position(Stream.DEVICE_LISTS)
        self.assertEqual(queries.device_list_changes(start, end), {self.alice.user_id})
        self.assertEqual(
            self.query(self.bob, {self.alice.user_id: []})["device_keys"], {self.alice.user_id: {}}
        )

    def test_other_devices_keep_their_keys(self) -> None:
        self.upload_device_keys(self.alice, one_time_keys=1)
        self.upload_device_keys(self.bob, one_time_keys=1)
        second = do_login_device(self.alice, "SECOND", None)
        token = issue_tokens(self.alice, second, False)["access_token"]
        other = ClientDevice(self.alice.user_id, "SECOND")
        self.api(token=token).post(
            "/_matrix/client/v3/keys/upload", {"device_keys": other.device_keys()}
        )
        self.assertEqual(do_delete_devices(self.alice, [self.alice.test_device_id]), 1)
        self.assertEqual(
            sorted(DeviceKeys.objects.values_list("device__device_id", flat=True)),
            sorted(["SECOND", self.bob.test_device_id]),
        )
        self.assertEqual(OneTimeKey.objects.get().device.device_id, self.bob.test_device_id)

    def test_deleting_returns_the_number_of_devices(self) -> None:
        do_login_device(self.alice, "A1", None)
        issue_tokens(self.alice, do_login_device(self.alice, "A2", None), False)
        self.assertEqual(do_delete_devices(self.alice, ["A1", "A2", "NOPE"]), 2)
