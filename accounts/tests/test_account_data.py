from __future__ import annotations

from accounts.models import AccountData
from matrixhs.streams import Stream, current_position
from matrixhs.testing import MatrixTestCase

GLOBAL = "/_matrix/client/v3/user/@alice:test.local/account_data"
ROOM = "/_matrix/client/v3/user/@alice:test.local/rooms/!room:test.local/account_data"


class AccountDataTests(MatrixTestCase):
    def test_put_then_get_global(self) -> None:
        url = f"{GLOBAL}/im.vector.web.settings"
        self.assertEqual(self.api(self.alice).put(url, {"theme": "dark"}).status_code, 200)
        self.assertEqual(self.api(self.alice).get(url).body, {"theme": "dark"})

    def test_overwrite_takes_a_new_stream_position(self) -> None:
        url = f"{GLOBAL}/m.test"
        self.api(self.alice).put(url, {"v": 1})
        first = AccountData.objects.get().stream_id
        self.api(self.alice).put(url, {"v": 2})
        row = AccountData.objects.get()
        self.assertEqual(row.content, {"v": 2})
        self.assertGreater(row.stream_id, first)
        self.assertEqual(current_position(Stream.ACCOUNT_DATA), row.stream_id)

    def test_per_room(self) -> None:
        url = f"{ROOM}/m.tag.like"
        self.api(self.alice).put(url, {"x": True})
        self.assertEqual(self.api(self.alice).get(url).body, {"x": True})
        self.assert_matrix_error(
            self.api(self.alice).get(f"{GLOBAL}/m.tag.like"), 404, "M_NOT_FOUND"
        )

    def test_missing_type_is_not_found(self) -> None:
        self.assert_matrix_error(self.api(self.alice).get(f"{GLOBAL}/nothing"), 404, "M_NOT_FOUND")

    def test_other_users_data_is_forbidden(self) -> None:
        url = f"{GLOBAL}/m.test"
        self.assert_matrix_error(self.api(self.mallory).put(url, {"a": 1}), 403, "M_FORBIDDEN")
        self.assert_matrix_error(self.api(self.mallory).get(url), 403, "M_FORBIDDEN")
        self.assertFalse(AccountData.objects.exists())

    def test_server_managed_types_are_refused(self) -> None:
        response = self.api(self.alice).put(f"{ROOM}/m.fully_read", {"event_id": "$x"})
        self.assert_matrix_error(response, 405, "M_BAD_JSON")
        response = self.api(self.alice).put(f"{GLOBAL}/m.push_rules", {})
        self.assert_matrix_error(response, 405, "M_BAD_JSON")
        self.assertFalse(AccountData.objects.exists())

    def test_invalid_room_id(self) -> None:
        url = "/_matrix/client/v3/user/@alice:test.local/rooms/not-a-room/account_data/m.x"
        self.assert_matrix_error(self.api(self.alice).put(url, {}), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(self.api(self.alice).get(url), 400, "M_INVALID_PARAM")
