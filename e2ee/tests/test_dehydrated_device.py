"""Dehydrated devices (MSC3814): PUT/GET/DELETE /dehydrated_device and the device's
to-device messages through /dehydrated_device/{deviceId}/events."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from accounts.actions.devices import do_login_device
from accounts.actions.tokens import issue_tokens
from accounts.actions.users import do_register_user
from accounts.models import AccessToken, Device, User
from e2ee import queries
from e2ee.models import DehydratedDevice, DeviceKeys, FallbackKey, OneTimeKey, ToDeviceMessage
from e2ee.tests.support import CLAIM, ClientDevice, E2eeTestCase, JsonDict
from matrixhs.streams import Stream, current_position
from matrixhs.testing import ApiClient

DEHYDRATED = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device"
SEND = "/_matrix/client/v3/sendToDevice"
#: The client uses the device's Curve25519 key as its ID: base64, "/" and "+" included.
DEVICE_ID = "Jr7y/Qe+0kQvKn1Z3xQwq5E0vN4nGkWbE9V6s8mT2hA"
DEVICE_DATA = {"algorithm": "org.matrix.msc3814.v2", "device_pickle": "secret", "nonce": "n"}


def events_path(device_id: str) -> str:
    return f"{DEHYDRATED}/{quote(device_id, safe='')}/events"


class DehydratedDeviceTestCase(E2eeTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.dehydrated_devices: dict[str, ClientDevice] = {}

    def unstable(self, user: User) -> ApiClient:
        """These paths are not in the spec, so responses are not checked against it."""
        return ApiClient(self.client, user.test_token, check_spec=False)  # type: ignore[attr-defined]

    def dehydrated_body(self, user: User, device_id: str = DEVICE_ID, **extra: Any) -> JsonDict:
        device = ClientDevice(user.user_id, device_id)
        self.dehydrated_devices[device_id] = device
        return {
            "device_id": device_id,
            "device_data": DEVICE_DATA,
            "initial_device_display_name": "Backup device",
            "device_keys": device.device_keys(dehydrated=True),
            "one_time_keys": device.one_time_keys(2),
            "fallback_keys": device.fallback_key(),
            **extra,
        }

    def dehydrate(self, user: User, device_id: str = DEVICE_ID) -> ClientDevice:
        response = self.unstable(user).put(DEHYDRATED, self.dehydrated_body(user, device_id))
        self.assertEqual((response.status_code, response.body), (200, {"device_id": device_id}))
        return self.dehydrated_devices[device_id]

    def send(self, user: User, messages: JsonDict, txn_id: str) -> None:
        response = self.api(user).put(f"{SEND}/m.room_key/{txn_id}", {"messages": messages})
        self.assertEqual(response.status_code, 200, response.body)

    def events(self, user: User, device_id: str, body: JsonDict, limit: int = 0) -> Any:
        path = events_path(device_id) + (f"?limit={limit}" if limit else "")
        return self.unstable(user).post(path, body)

    def read_events(self, next_batch: str | None = None, limit: int = 0) -> JsonDict:
        body = {"next_batch": next_batch} if next_batch is not None else {}
        response = self.events(self.alice, DEVICE_ID, body, limit)
        self.assertEqual(response.status_code, 200, response.body)
        return response.body  # type: ignore[no-any-return]


class DehydrateTests(DehydratedDeviceTestCase):
    def test_put_then_get_returns_the_device_data(self) -> None:
        self.dehydrate(self.alice)
        response = self.unstable(self.alice).get(DEHYDRATED)
        self.assertEqual(
            (response.status_code, response.body),
            (200, {"device_id": DEVICE_ID, "device_data": DEVICE_DATA}),
        )
        device = Device.objects.get(user=self.alice, device_id=DEVICE_ID)
        self.assertEqual(device.display_name, "Backup device")
        self.assertFalse(AccessToken.objects.filter(device=device).exists())
        self.assertEqual(
            queries.one_time_key_counts(self.alice, DEVICE_ID), {"signed_curve25519": 2}
        )
        self.assertEqual(
            queries.unused_fallback_key_types(self.alice, DEVICE_ID), ["signed_curve25519"]
        )

    def test_no_dehydrated_device_is_not_found(self) -> None:
        self.dehydrate(self.bob)
        response = self.unstable(self.alice).get(DEHYDRATED)
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")

    def test_keys_are_visible_to_other_users(self) -> None:
        device = self.dehydrate(self.alice)
        body = self.query(self.bob, {self.alice.user_id: []})
        keys = body["device_keys"][self.alice.user_id][DEVICE_ID]
        self.assertEqual(keys["keys"], device.device_keys()["keys"])
        self.assertIs(keys["dehydrated"], True)
        self.assertEqual(keys["unsigned"], {"device_display_name": "Backup device"})

    def test_a_one_time_key_then_the_fallback_key_can_be_claimed(self) -> None:
        body = self.dehydrated_body(self.alice, one_time_keys=None)
        one_time_key = self.dehydrated_devices[DEVICE_ID].one_time_keys(1)
        body["one_time_keys"] = one_time_key
        self.assertEqual(self.unstable(self.alice).put(DEHYDRATED, body).status_code, 200)
        claim = {"one_time_keys": {self.alice.user_id: {DEVICE_ID: "signed_curve25519"}}}
        claimed = [
            self.api(self.bob).post(CLAIM, claim).body["one_time_keys"][self.alice.user_id]
            for _ in range(2)
        ]
        self.assertEqual(claimed[0], {DEVICE_ID: one_time_key})
        self.assertEqual(claimed[1], {DEVICE_ID: body["fallback_keys"]})

    def test_putting_the_device_is_a_device_list_change(self) -> None:
        start = current_position(Stream.DEVICE_LISTS)
        self.dehydrate(self.alice)
        end = current_position(Stream.DEVICE_LISTS)
        self.assertEqual(queries.device_list_changes(start, end), {self.alice.user_id})

    def test_hidden_from_the_device_list_but_reachable_by_id(self) -> None:
        self.dehydrate(self.alice)
        response = self.api(self.alice).get("/_matrix/client/v3/devices")
        ids = [device["device_id"] for device in response.body["devices"]]
        self.assertEqual(ids, [self.alice.test_device_id])  # type: ignore[attr-defined]
        response = self.api(self.alice).get(f"/_matrix/client/v3/devices/{quote(DEVICE_ID, '')}")
        self.assertEqual(response.body["device_id"], DEVICE_ID)

    def test_logging_in_on_the_dehydrated_device_is_refused(self) -> None:
        device = self.dehydrate(self.alice)
        login = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "alice"},
            "password": self.password,
            "device_id": DEVICE_ID,
        }
        response = self.api().post("/_matrix/client/v3/login", login)
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertFalse(AccessToken.objects.filter(device__device_id=DEVICE_ID).exists())
        # Still the dehydrated device, with its keys, and still out of the device list.
        self.assertEqual(self.unstable(self.alice).get(DEHYDRATED).body["device_id"], DEVICE_ID)
        self.assertEqual(
            self.query(self.bob, {self.alice.user_id: [DEVICE_ID]})["device_keys"][
                self.alice.user_id
            ][DEVICE_ID]["keys"],
            device.device_keys(dehydrated=True)["keys"],
        )
        response = self.api(self.alice).get("/_matrix/client/v3/devices")
        self.assertEqual(
            [d["device_id"] for d in response.body["devices"]], [self.alice.test_device_id]
        )  # type: ignore[attr-defined]

    def test_a_second_put_replaces_the_device(self) -> None:
        self.dehydrate(self.alice)
        self.send(self.bob, {self.alice.user_id: {DEVICE_ID: {"n": 1}}}, "t1")
        self.dehydrate(self.alice, "SECOND")
        self.assertEqual(self.unstable(self.alice).get(DEHYDRATED).body["device_id"], "SECOND")
        self.assertFalse(Device.objects.filter(device_id=DEVICE_ID).exists())
        self.assertEqual(
            set(
                DeviceKeys.objects.filter(device__user=self.alice).values_list(
                    "device__device_id", flat=True
                )
            ),
            {"SECOND"},
        )
        self.assertEqual(
            {row.device.device_id for row in OneTimeKey.objects.select_related("device")},
            {"SECOND"},
        )
        self.assertFalse(ToDeviceMessage.objects.exists())
        self.assert_matrix_error(self.events(self.alice, DEVICE_ID, {}), 403, "M_FORBIDDEN")

    def test_putting_the_same_id_again_starts_afresh(self) -> None:
        self.dehydrate(self.alice)
        self.send(self.bob, {self.alice.user_id: {DEVICE_ID: {"n": 1}}}, "t1")
        self.dehydrate(self.alice)
        self.assertEqual(self.read_events()["events"], [])
        self.assertEqual(OneTimeKey.objects.count(), 2)

    def test_each_user_has_their_own(self) -> None:
        self.dehydrate(self.alice)
        self.dehydrate(self.bob, "BOBS")
        self.assertEqual(DehydratedDevice.objects.count(), 2)
        self.assertEqual(self.unstable(self.alice).get(DEHYDRATED).body["device_id"], DEVICE_ID)

    def test_versions_advertise_the_feature(self) -> None:
        response = self.api().get("/_matrix/client/versions")
        self.assertIs(response.body["unstable_features"]["org.matrix.msc3814"], True)


class DeleteTests(DehydratedDeviceTestCase):
    def test_delete_takes_the_device_and_its_keys(self) -> None:
        self.dehydrate(self.alice)
        self.send(self.bob, {self.alice.user_id: {DEVICE_ID: {"n": 1}}}, "t1")
        start = current_position(Stream.DEVICE_LISTS)
        response = self.unstable(self.alice).delete(DEHYDRATED)
        self.assertEqual((response.status_code, response.body), (200, {"device_id": DEVICE_ID}))
        self.assertFalse(Device.objects.filter(device_id=DEVICE_ID).exists())
        for model in (DehydratedDevice, DeviceKeys, OneTimeKey, FallbackKey, ToDeviceMessage):
            self.assertFalse(model.objects.exists(), model.__name__)
        end = current_position(Stream.DEVICE_LISTS)
        self.assertEqual(queries.device_list_changes(start, end), {self.alice.user_id})
        self.assert_matrix_error(self.unstable(self.alice).get(DEHYDRATED), 404, "M_NOT_FOUND")

    def test_delete_without_a_device_is_not_found(self) -> None:
        self.dehydrate(self.bob)
        response = self.unstable(self.alice).delete(DEHYDRATED)
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")
        self.assertTrue(DehydratedDevice.objects.filter(user=self.bob).exists())

    def test_logging_out_everywhere_deletes_it_too(self) -> None:
        self.dehydrate(self.alice)
        self.assertEqual(
            self.api(self.alice).post("/_matrix/client/v3/logout/all").status_code, 200
        )
        self.assertFalse(DehydratedDevice.objects.exists())
        self.assertFalse(Device.objects.filter(device_id=DEVICE_ID).exists())


class EventsTests(DehydratedDeviceTestCase):
    def test_messages_come_in_batches_and_stay_until_the_device_goes(self) -> None:
        self.dehydrate(self.alice)
        for n in range(3):
            self.send(self.bob, {self.alice.user_id: {DEVICE_ID: {"n": n}}}, f"t{n}")
        first = self.read_events(limit=2)
        self.assertEqual(
            first["events"],
            [
                {"sender": self.bob.user_id, "type": "m.room_key", "content": {"n": n}}
                for n in range(2)
            ],
        )
        second = self.read_events(first["next_batch"], limit=2)
        self.assertEqual([event["content"] for event in second["events"]], [{"n": 2}])
        last = self.read_events(second["next_batch"], limit=2)
        self.assertEqual(last["events"], [])
        self.assertEqual(self.read_events(last["next_batch"])["events"], [])
        # Reading acknowledges nothing: a rehydration cut short can start again.
        self.assertEqual(len(self.read_events()["events"]), 3)
        self.assertEqual(ToDeviceMessage.objects.count(), 3)

    def test_new_messages_follow_the_last_batch(self) -> None:
        self.dehydrate(self.alice)
        done = self.read_events()
        self.assertEqual(done["events"], [])
        self.send(self.bob, {self.alice.user_id: {"*": {"to": "all"}}}, "t1")
        after = self.read_events(done["next_batch"])
        self.assertEqual([event["content"] for event in after["events"]], [{"to": "all"}])

    def test_only_the_users_current_dehydrated_device(self) -> None:
        self.assert_matrix_error(self.events(self.alice, DEVICE_ID, {}), 403, "M_FORBIDDEN")
        self.dehydrate(self.bob)
        self.assert_matrix_error(self.events(self.alice, DEVICE_ID, {}), 403, "M_FORBIDDEN")
        self.dehydrate(self.alice, "ALICES")
        own_device = self.alice.test_device_id  # type: ignore[attr-defined]
        self.assert_matrix_error(self.events(self.alice, own_device, {}), 403, "M_FORBIDDEN")
        self.assertEqual(self.events(self.alice, "ALICES", {}).status_code, 200)

    def test_bad_requests(self) -> None:
        self.dehydrate(self.alice)
        cases: list[tuple[JsonDict, int, str]] = [
            ({"next_batch": "abc"}, 400, "M_INVALID_PARAM"),
            ({"next_batch": ""}, 400, "M_INVALID_PARAM"),
            ({"next_batch": 5}, 400, "M_BAD_JSON"),
        ]
        for body, status, errcode in cases:
            self.assert_matrix_error(self.events(self.alice, DEVICE_ID, body), status, errcode)
        response = self.unstable(self.alice).post(events_path(DEVICE_ID) + "?limit=0", {})
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")
        response = self.unstable(self.alice).request("POST", events_path(DEVICE_ID), raw=b"[")
        self.assert_matrix_error(response, 400, "M_NOT_JSON")
        response = self.unstable(self.alice).request("POST", events_path(DEVICE_ID), raw=b"")
        self.assertEqual(response.status_code, 200)


class BadPutTests(DehydratedDeviceTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.dehydrate(self.alice)
        self.before = self.snapshot()

    def snapshot(self) -> tuple[Any, ...]:
        return (
            sorted(Device.objects.values_list("device_id", flat=True)),
            list(DehydratedDevice.objects.values_list("device__device_id", "device_data")),
            sorted(DeviceKeys.objects.values_list("key_json", flat=True)),
            OneTimeKey.objects.count(),
            FallbackKey.objects.count(),
            current_position(Stream.DEVICE_LISTS),
        )

    def assert_refused(self, body: Any, status: int, errcode: str) -> None:
        response = self.unstable(self.alice).put(DEHYDRATED, body)
        self.assert_matrix_error(response, status, errcode)
        self.assertEqual(self.snapshot(), self.before)

    def test_missing_fields(self) -> None:
        for name in ("device_id", "device_data", "device_keys"):
            body = self.dehydrated_body(self.alice, "NEW")
            del body[name]
            self.assert_refused(body, 400, "M_MISSING_PARAM")

    def test_wrong_types(self) -> None:
        wrong: tuple[JsonDict, ...] = (
            {"device_id": 1},
            {"device_data": "pickle"},
            {"device_data": {"pickle": "no algorithm"}},
            {"device_keys": []},
            {"initial_device_display_name": 1},
            {"one_time_keys": []},
            {"fallback_keys": {"no-colon": "key"}},
        )
        for extra in wrong:
            body = {**self.dehydrated_body(self.alice, "NEW"), **extra}
            self.assert_refused(body, 400, "M_BAD_JSON")

    def test_not_json(self) -> None:
        response = self.unstable(self.alice).request("PUT", DEHYDRATED, raw=b"{")
        self.assert_matrix_error(response, 400, "M_NOT_JSON")

    def test_invalid_device_id_or_display_name(self) -> None:
        for extra in (
            {"device_id": ""},
            {"device_id": "D" * 256},
            {"initial_device_display_name": "n" * 1001},
        ):
            body = self.dehydrated_body(self.alice, "NEW")
            self.assert_refused({**body, **extra}, 400, "M_INVALID_PARAM")

    def test_the_id_of_another_device_of_the_user_is_refused(self) -> None:
        own_device = self.alice.test_device_id  # type: ignore[attr-defined]
        self.assert_refused(self.dehydrated_body(self.alice, own_device), 400, "M_INVALID_PARAM")

    def test_device_keys_of_another_device_or_user_are_refused(self) -> None:
        other = ClientDevice(self.alice.user_id, "OTHER").device_keys()
        self.assert_refused(
            self.dehydrated_body(self.alice, "NEW", device_keys=other), 400, "M_BAD_JSON"
        )
        bobs = ClientDevice(self.bob.user_id, "NEW").device_keys()
        self.assert_refused(
            self.dehydrated_body(self.alice, "NEW", device_keys=bobs), 400, "M_BAD_JSON"
        )

    def test_device_keys_with_an_unverifiable_signature_are_accepted(self) -> None:
        # As on /keys/upload: clients verify device keys themselves.
        body = self.dehydrated_body(self.alice, "NEW")
        body["device_keys"]["algorithms"] = ["tampered"]
        response = self.unstable(self.alice).put(DEHYDRATED, body)
        self.assertEqual(response.status_code, 200, response.body)

    def test_guests_may_not_dehydrate(self) -> None:
        guest = do_register_user("guest1", None, guest=True)
        token = issue_tokens(guest, do_login_device(guest, None, None), False)["access_token"]
        client = ApiClient(self.client, token, check_spec=False)
        response = client.put(DEHYDRATED, self.dehydrated_body(guest, "GUESTS"))
        self.assert_matrix_error(response, 403, "M_GUEST_ACCESS_FORBIDDEN")

    def test_needs_an_access_token(self) -> None:
        response = ApiClient(self.client, None, check_spec=False).get(DEHYDRATED)
        self.assert_matrix_error(response, 401, "M_MISSING_TOKEN")
