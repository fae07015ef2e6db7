from __future__ import annotations

from django.db import transaction

from accounts.actions.devices import do_delete_devices, do_login_device
from accounts.models import User
from e2ee import queries
from e2ee.actions.devices import record_device_list_change
from e2ee.tests.support import SIGNATURES_UPLOAD, E2eeTestCase
from matrixhs.streams import Stream, current_position
from matrixhs.tokens import current_token
from rooms.actions.create import do_create_room
from rooms.actions.membership import do_join, do_leave

CHANGES = "/_matrix/client/v3/keys/changes"


class KeysChangesTests(E2eeTestCase):
    def setUp(self) -> None:
        super().setUp()
        # /keys/changes reports users who share a room with the caller.
        self.room = do_create_room(self.alice, {"preset": "public_chat"})
        for user in (self.bob, self.mallory):
            do_join(user, self.room)

    def changes(self, user: User, since: int, until: int | None = None) -> dict:
        """/keys/changes between two sync tokens that differ in their device-list part."""
        until = current_position(Stream.DEVICE_LISTS) if until is None else until
        now = current_token()
        start, end = now.with_(device_lists=since), now.with_(device_lists=until)
        response = self.api(user).get(f"{CHANGES}?from={start.encode()}&to={end.encode()}")
        self.assertEqual(response.status_code, 200, response.body)
        return response.body  # type: ignore[no-any-return]

    def test_users_who_share_no_room_are_not_reported(self) -> None:
        do_leave(self.mallory.user_id, self.room)
        start = current_position(Stream.DEVICE_LISTS)
        self.upload_device_keys(self.mallory)
        self.assertEqual(self.changes(self.bob, start)["changed"], [])

    def test_malformed_tokens(self) -> None:
        response = self.api(self.bob).get(f"{CHANGES}?from=12&to=s1_0_0_0_0_0_0")
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")
        self.assert_matrix_error(self.api(self.bob).get(CHANGES), 400, "M_MISSING_PARAM")

    def test_key_upload_shows_up_between_the_positions(self) -> None:
        start = current_position(Stream.DEVICE_LISTS)
        self.upload_device_keys(self.alice)
        middle = current_position(Stream.DEVICE_LISTS)
        self.upload_device_keys(self.bob)
        self.assertEqual(
            self.changes(self.mallory, start, middle), {"changed": [self.alice.user_id], "left": []}
        )
        self.assertEqual(self.changes(self.mallory, middle)["changed"], [self.bob.user_id])
        self.assertEqual(
            self.changes(self.mallory, start)["changed"],
            sorted([self.alice.user_id, self.bob.user_id]),
        )

    def test_deleting_a_device_with_keys_is_a_change(self) -> None:
        do_login_device(self.alice, "PHONE", None)
        do_login_device(self.alice, "TABLET", None)
        self.upload_device_keys(self.alice)
        start = current_position(Stream.DEVICE_LISTS)
        do_delete_devices(self.alice, ["PHONE"])  # no keys: no change
        self.assertEqual(current_position(Stream.DEVICE_LISTS), start)
        do_delete_devices(self.alice, [self.alice.test_device_id, "TABLET"])
        self.assertEqual(self.changes(self.bob, start)["changed"], [self.alice.user_id])

    def test_signatures_by_a_user_signing_key_are_news_for_the_signer_only(self) -> None:
        alice = self.set_up_cross_signing(self.alice)
        bob = self.set_up_cross_signing(self.bob)
        start = current_position(Stream.DEVICE_LISTS)
        signed = alice.sign_with(alice.usk, bob.master())
        self.api(self.alice).post(
            SIGNATURES_UPLOAD, {self.bob.user_id: {bob.master_public: signed}}
        )
        self.assertEqual(self.changes(self.alice, start)["changed"], [self.bob.user_id])
        self.assertEqual(self.changes(self.mallory, start)["changed"], [])
        end = current_position(Stream.DEVICE_LISTS)
        self.assertEqual(
            queries.signature_changes(self.alice.user_id, start, end), {self.bob.user_id}
        )
        self.assertEqual(queries.device_list_changes(start, end), set())

    def test_to_past_the_current_position_is_clamped(self) -> None:
        start = current_position(Stream.DEVICE_LISTS)
        self.upload_device_keys(self.alice)
        self.assertEqual(
            self.changes(self.bob, start, start + 1000)["changed"], [self.alice.user_id]
        )

    def test_from_after_to_is_empty(self) -> None:
        self.upload_device_keys(self.alice)
        position = current_position(Stream.DEVICE_LISTS)
        self.assertEqual(self.changes(self.bob, position, 0)["changed"], [])

    def test_record_device_list_change_takes_one_position(self) -> None:
        start = current_position(Stream.DEVICE_LISTS)
        with transaction.atomic():
            position = record_device_list_change([self.alice.user_id, self.bob.user_id])
        self.assertEqual(position, start + 1)
        self.assertEqual(
            queries.device_list_changes(start, position), {self.alice.user_id, self.bob.user_id}
        )
        with transaction.atomic():
            self.assertEqual(record_device_list_change([]), 0)

    def test_bad_tokens(self) -> None:
        api = self.api(self.bob)
        self.assert_matrix_error(api.get(f"{CHANGES}?to=1"), 400, "M_MISSING_PARAM")
        self.assert_matrix_error(api.get(f"{CHANGES}?from=1"), 400, "M_MISSING_PARAM")
        self.assert_matrix_error(api.get(f"{CHANGES}?from=s12_3&to=4"), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(api.get(f"{CHANGES}?from=-1&to=4"), 400, "M_INVALID_PARAM")

    def test_needs_an_access_token(self) -> None:
        self.assert_matrix_error(self.api().get(f"{CHANGES}?from=0&to=0"), 401, "M_MISSING_TOKEN")
