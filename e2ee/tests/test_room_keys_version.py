from __future__ import annotations

from e2ee.models import RoomKey
from matrixhs.testing import MatrixTestCase

VERSION = "/_matrix/client/v3/room_keys/version"
ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
AUTH_DATA = {"public_key": "abcdefg", "signatures": {"@alice:test.local": {"ed25519:D": "sig"}}}


class RoomKeysVersionTests(MatrixTestCase):
    def create(self, auth_data: dict | None = None) -> str:
        response = self.api(self.alice).post(
            VERSION, {"algorithm": ALGORITHM, "auth_data": auth_data or AUTH_DATA}
        )
        self.assertEqual(response.status_code, 200, response.body)
        return response.body["version"]  # type: ignore[no-any-return]

    def test_no_backup_is_not_found(self) -> None:
        self.assert_matrix_error(self.api(self.alice).get(VERSION), 404, "M_NOT_FOUND")

    def test_create_then_get_the_current_version(self) -> None:
        self.assertEqual(self.create(), "1")
        self.assertEqual(self.create({"public_key": "new"}), "2")
        body = self.api(self.alice).get(VERSION).body
        self.assertEqual(
            body,
            {
                "algorithm": ALGORITHM,
                "auth_data": {"public_key": "new"},
                "count": 0,
                "etag": "0",
                "version": "2",
            },
        )
        self.assertEqual(self.api(self.alice).get(f"{VERSION}/1").body["auth_data"], AUTH_DATA)

    def test_backups_are_per_user(self) -> None:
        self.create()
        self.assert_matrix_error(self.api(self.bob).get(VERSION), 404, "M_NOT_FOUND")
        self.assert_matrix_error(self.api(self.bob).get(f"{VERSION}/1"), 404, "M_NOT_FOUND")

    def test_unknown_versions_are_not_found(self) -> None:
        self.create()
        for version in ("2", "abc", "-1", "99999999999999999999999"):
            with self.subTest(version=version):
                self.assert_matrix_error(
                    self.api(self.alice).get(f"{VERSION}/{version}"), 404, "M_NOT_FOUND"
                )

    def test_update_auth_data(self) -> None:
        version = self.create()
        response = self.api(self.alice).put(
            f"{VERSION}/{version}",
            {"algorithm": ALGORITHM, "auth_data": {"public_key": "x"}, "version": version},
        )
        self.assertEqual((response.status_code, response.body), (200, {}))
        self.assertEqual(self.api(self.alice).get(VERSION).body["auth_data"], {"public_key": "x"})

    def test_update_refuses_another_version_or_algorithm(self) -> None:
        version = self.create()
        url = f"{VERSION}/{version}"
        response = self.api(self.alice).put(
            url, {"algorithm": ALGORITHM, "auth_data": {}, "version": "7"}
        )
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")
        response = self.api(self.alice).put(url, {"algorithm": "m.other", "auth_data": {}})
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")
        response = self.api(self.alice).put(
            f"{VERSION}/9", {"algorithm": ALGORITHM, "auth_data": {}}
        )
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")
        self.assertEqual(self.api(self.alice).get(VERSION).body["auth_data"], AUTH_DATA)

    def test_delete_removes_the_keys_and_is_idempotent(self) -> None:
        version = self.create()
        self.api(self.alice).put(
            f"/_matrix/client/v3/room_keys/keys/!room:test.local/s1?version={version}",
            {
                "first_message_index": 0,
                "forwarded_count": 0,
                "is_verified": True,
                "session_data": {},
            },
        )
        self.assertEqual(RoomKey.objects.count(), 1)
        for _ in range(2):
            response = self.api(self.alice).delete(f"{VERSION}/{version}")
            self.assertEqual((response.status_code, response.body), (200, {}))
        self.assertFalse(RoomKey.objects.exists())
        self.assert_matrix_error(self.api(self.alice).get(VERSION), 404, "M_NOT_FOUND")
        self.assert_matrix_error(self.api(self.alice).delete(f"{VERSION}/5"), 404, "M_NOT_FOUND")

    def test_deleting_the_current_version_makes_the_previous_current(self) -> None:
        self.create()
        second = self.create()
        self.api(self.alice).delete(f"{VERSION}/{second}")
        self.assertEqual(self.api(self.alice).get(VERSION).body["version"], "1")
        self.assertEqual(self.create(), "3")  # version numbers are never reused

    def test_bad_bodies(self) -> None:
        api = self.api(self.alice)
        self.assert_matrix_error(
            api.post(VERSION, {"algorithm": ALGORITHM}), 400, "M_MISSING_PARAM"
        )
        self.assert_matrix_error(
            api.post(VERSION, {"algorithm": ALGORITHM, "auth_data": "x"}), 400, "M_BAD_JSON"
        )
        self.assert_matrix_error(
            api.post(VERSION, {"algorithm": 1, "auth_data": {}}), 400, "M_BAD_JSON"
        )

    def test_post_to_a_version_is_not_allowed(self) -> None:
        version = self.create()
        response = self.api(self.alice).post(f"{VERSION}/{version}", {})
        self.assert_matrix_error(response, 405, "M_UNRECOGNIZED")

    def test_needs_a_full_account(self) -> None:
        self.assert_matrix_error(self.api().get(VERSION), 401, "M_MISSING_TOKEN")
