from __future__ import annotations

from e2ee import queries
from e2ee.models import DeviceKeys, DeviceListChange, FallbackKey, OneTimeKey
from e2ee.tests.support import QUERY, UPLOAD, ClientDevice, E2eeTestCase
from matrixhs.streams import Stream, current_position


class KeysUploadTests(E2eeTestCase):
    def test_upload_device_and_one_time_keys_returns_counts(self) -> None:
        device = self.device_of(self.alice)
        body = self.upload(
            self.alice, device_keys=device.device_keys(), one_time_keys=device.one_time_keys(3)
        )
        self.assertEqual(body, {"one_time_key_counts": {"signed_curve25519": 3}})
        self.assertTrue(DeviceKeys.objects.filter(device__device_id=device.device_id).exists())

    def test_counts_always_name_signed_curve25519(self) -> None:
        device = self.device_of(self.alice)
        body = self.upload(self.alice, one_time_keys=device.one_time_keys(2, "curve25519"))
        self.assertEqual(body["one_time_key_counts"], {"signed_curve25519": 0, "curve25519": 2})

    def test_reuploading_the_same_one_time_keys_is_idempotent(self) -> None:
        device = self.device_of(self.alice)
        keys = device.one_time_keys(4)
        self.upload(self.alice, device_keys=device.device_keys(), one_time_keys=keys)
        body = self.upload(self.alice, one_time_keys=keys)
        self.assertEqual(body["one_time_key_counts"]["signed_curve25519"], 4)

    def test_overlapping_upload_adds_only_the_new_keys(self) -> None:
        device = self.device_of(self.alice)
        keys = device.one_time_keys(4)
        ids = sorted(keys)
        self.upload(self.alice, one_time_keys={k: keys[k] for k in ids[:3]})
        body = self.upload(self.alice, one_time_keys={k: keys[k] for k in ids[1:]})
        self.assertEqual(body["one_time_key_counts"]["signed_curve25519"], 4)

    def test_resigned_copy_of_a_stored_one_time_key_is_accepted(self) -> None:
        device = self.device_of(self.alice)
        keys = device.one_time_keys(1)
        self.upload(self.alice, one_time_keys=keys)
        ((key_id, key),) = keys.items()
        resigned = {"key": key["key"], "signatures": {self.alice.user_id: {"ed25519:X": "sig"}}}
        self.upload(self.alice, one_time_keys={key_id: resigned})
        self.assertEqual(OneTimeKey.objects.count(), 1)

    def test_different_key_under_a_stored_id_fails_and_writes_nothing(self) -> None:
        device = self.device_of(self.alice)
        keys = device.one_time_keys(1)
        self.upload(self.alice, one_time_keys=keys)
        ((key_id, _),) = keys.items()
        response = self.api(self.alice).post(
            UPLOAD,
            {
                "device_keys": device.device_keys(),
                "one_time_keys": {key_id: device.sign({"key": "other"}), **device.one_time_keys(1)},
                "fallback_keys": device.fallback_key(),
            },
        )
        self.assert_matrix_error(response, 400, "M_UNKNOWN")
        self.assertEqual(OneTimeKey.objects.count(), 1)
        self.assertFalse(DeviceKeys.objects.exists())
        self.assertFalse(FallbackKey.objects.exists())

    def test_device_keys_of_another_user_are_refused(self) -> None:
        keys = ClientDevice(self.bob.user_id, self.alice.test_device_id).device_keys()
        response = self.api(self.alice).post(UPLOAD, {"device_keys": keys})
        self.assert_matrix_error(response, 400, "M_BAD_JSON")

    def test_device_keys_of_another_device_are_refused(self) -> None:
        keys = ClientDevice(self.alice.user_id, "OTHERDEVICE").device_keys()
        response = self.api(self.alice).post(UPLOAD, {"device_keys": keys})
        self.assert_matrix_error(response, 400, "M_BAD_JSON")

    def test_incomplete_device_keys_are_refused(self) -> None:
        incomplete = {"user_id": self.alice.user_id, "device_id": self.alice.test_device_id}
        response = self.api(self.alice).post(UPLOAD, {"device_keys": incomplete})
        self.assert_matrix_error(response, 400, "M_BAD_JSON")

    def test_null_device_keys_are_refused(self) -> None:
        self.assert_matrix_error(
            self.api(self.alice).post(UPLOAD, {"device_keys": None}), 400, "M_BAD_JSON"
        )

    def test_device_keys_with_an_unverifiable_signature_are_stored(self) -> None:
        keys = self.device_of(self.alice).device_keys()
        keys["algorithms"] = ["m.tampered"]
        response = self.api(self.alice).post(UPLOAD, {"device_keys": keys})
        self.assertEqual(response.status_code, 200, response.body)
        query = self.api(self.bob).post(QUERY, {"device_keys": {self.alice.user_id: []}})
        device_id = self.alice.test_device_id
        stored = query.body["device_keys"][self.alice.user_id][device_id]
        self.assertEqual(stored["algorithms"], ["m.tampered"])

    def test_device_keys_with_no_signatures_are_stored(self) -> None:
        keys = self.device_of(self.alice).device_keys()
        keys["signatures"] = {}
        response = self.api(self.alice).post(UPLOAD, {"device_keys": keys})
        self.assertEqual(response.status_code, 200, response.body)
        self.assertTrue(DeviceKeys.objects.exists())

    def test_device_keys_without_an_ed25519_key_are_refused(self) -> None:
        device = self.device_of(self.alice)
        keys = device.device_keys()
        del keys["keys"][device.key_id]
        response = self.api(self.alice).post(UPLOAD, {"device_keys": keys})
        self.assert_matrix_error(response, 400, "M_BAD_JSON")

    def test_unsigned_is_not_stored(self) -> None:
        keys = self.device_of(self.alice).device_keys()
        keys["unsigned"] = {"device_display_name": "spoofed"}
        self.upload(self.alice, device_keys=keys)
        self.assertNotIn("spoofed", DeviceKeys.objects.get().key_json)

    def test_malformed_key_ids_and_values_are_refused(self) -> None:
        device = self.device_of(self.alice)
        key = device.sign({"key": "k"})
        for bad in (
            {"nocolon": key},
            {"a:b:c": key},
            {"signed_curve25519:X": 3},
            {"signed_curve25519:X": {"key": "k"}},
            {"curve25519:X": "k", "x:1": 1.5},
        ):
            with self.subTest(bad=bad):
                response = self.api(self.alice).post(UPLOAD, {"one_time_keys": bad})
                self.assert_matrix_error(response, 400, "M_BAD_JSON")
        self.assertFalse(OneTimeKey.objects.exists())

    def test_not_json_and_wrong_types(self) -> None:
        self.assert_matrix_error(self.api(self.alice).post(UPLOAD, raw=b"{"), 400, "M_NOT_JSON")
        self.assert_matrix_error(
            self.api(self.alice).post(UPLOAD, {"one_time_keys": []}), 400, "M_BAD_JSON"
        )

    def test_needs_an_access_token(self) -> None:
        self.assert_matrix_error(self.api().post(UPLOAD, {}), 401, "M_MISSING_TOKEN")


class FallbackKeyUploadTests(E2eeTestCase):
    def test_fallback_key_is_stored_unused(self) -> None:
        device = self.device_of(self.alice)
        self.upload(self.alice, fallback_keys=device.fallback_key())
        self.assertEqual(
            queries.unused_fallback_key_types(self.alice, device.device_id), ["signed_curve25519"]
        )

    def test_a_new_fallback_key_replaces_a_used_one(self) -> None:
        device = self.device_of(self.alice)
        self.upload(self.alice, fallback_keys=device.fallback_key("F1"))
        FallbackKey.objects.update(used=True)
        self.upload(self.alice, fallback_keys=device.fallback_key("F2"))
        row = FallbackKey.objects.get()
        self.assertEqual((row.key_id, row.used), ("F2", False))

    def test_the_same_fallback_key_again_stays_used(self) -> None:
        device = self.device_of(self.alice)
        key = device.fallback_key()
        self.upload(self.alice, fallback_keys=key)
        FallbackKey.objects.update(used=True)
        self.upload(self.alice, fallback_keys=key)
        self.assertEqual(queries.unused_fallback_key_types(self.alice, device.device_id), [])

    def test_two_fallback_keys_of_one_algorithm_are_refused(self) -> None:
        device = self.device_of(self.alice)
        keys = {**device.fallback_key("F1"), **device.fallback_key("F2")}
        response = self.api(self.alice).post(UPLOAD, {"fallback_keys": keys})
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")


class DeviceListChangeOnUploadTests(E2eeTestCase):
    def test_first_device_keys_upload_is_a_device_list_change(self) -> None:
        before = current_position(Stream.DEVICE_LISTS)
        self.upload_device_keys(self.alice)
        after = current_position(Stream.DEVICE_LISTS)
        self.assertGreater(after, before)
        self.assertEqual(queries.device_list_changes(before, after), {self.alice.user_id})

    def test_same_device_keys_again_change_nothing(self) -> None:
        device = self.upload_device_keys(self.alice)
        count = DeviceListChange.objects.count()
        self.upload(self.alice, device_keys=device.device_keys())
        self.upload(self.alice, one_time_keys=device.one_time_keys(1))
        self.assertEqual(DeviceListChange.objects.count(), count)

    def test_new_device_keys_are_a_change(self) -> None:
        self.upload_device_keys(self.alice)
        count = DeviceListChange.objects.count()
        replacement = ClientDevice(self.alice.user_id, self.alice.test_device_id)
        self.upload(self.alice, device_keys=replacement.device_keys())
        self.assertEqual(DeviceListChange.objects.count(), count + 1)
