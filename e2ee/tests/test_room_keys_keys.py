from __future__ import annotations

from urllib.parse import quote

from matrixhs.testing import MatrixTestCase

VERSION = "/_matrix/client/v3/room_keys/version"
KEYS = "/_matrix/client/v3/room_keys/keys"
ROOM = "!room:test.local"
ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"


def key(verified: bool = False, index: int = 10, forwarded: int = 5, data: str = "a") -> dict:
    return {
        "first_message_index": index,
        "forwarded_count": forwarded,
        "is_verified": verified,
        "session_data": {"ciphertext": data},
    }


class RoomKeysTests(MatrixTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.version = self.new_backup()

    def new_backup(self) -> str:
        response = self.api(self.alice).post(VERSION, {"algorithm": ALGORITHM, "auth_data": {}})
        return response.body["version"]  # type: ignore[no-any-return]

    def put(self, body: dict, path: str = f"{KEYS}/{ROOM}/s1", version: str | None = None) -> dict:
        response = self.api(self.alice).put(f"{path}?version={version or self.version}", body)
        self.assertEqual(response.status_code, 200, response.body)
        return response.body  # type: ignore[no-any-return]

    def get(self, path: str = f"{KEYS}/{ROOM}/s1") -> dict:
        response = self.api(self.alice).get(f"{path}?version={self.version}")
        self.assertEqual(response.status_code, 200, response.body)
        return response.body  # type: ignore[no-any-return]

    def test_store_and_fetch_one_session(self) -> None:
        self.assertEqual(self.put(key()), {"etag": "1", "count": 1})
        self.assertEqual(self.get(), key())

    def test_the_spec_rule_for_replacing_a_stored_key(self) -> None:
        cases = [
            # (stored, new, new replaces stored)
            (key(verified=False), key(verified=True, index=99, forwarded=99), True),
            (key(verified=True), key(verified=False, index=0, forwarded=0), False),
            (key(), key(index=9, forwarded=99), True),
            (key(), key(index=11, forwarded=0), False),
            (key(), key(forwarded=4), True),
            (key(), key(forwarded=6), False),
            (key(), key(data="same metadata"), False),
        ]
        for n, (stored, new, replaces) in enumerate(cases):
            with self.subTest(stored=stored, new=new):
                path = f"{KEYS}/{ROOM}/case{n}"
                self.put(stored, path)
                etag = self.api(self.alice).get(VERSION).body["etag"]
                answer = self.put(new, path)
                self.assertEqual(self.get(path), new if replaces else stored)
                self.assertEqual(answer["etag"] != etag, replaces)

    def test_store_and_fetch_a_room_and_everything(self) -> None:
        body = self.put({"sessions": {"s1": key(), "s2": key(True)}}, f"{KEYS}/{ROOM}")
        self.assertEqual(body["count"], 2)
        self.put({"rooms": {"!other:test.local": {"sessions": {"s3": key()}}}}, KEYS)
        self.assertEqual(self.get(f"{KEYS}/{ROOM}"), {"sessions": {"s1": key(), "s2": key(True)}})
        everything = self.get(KEYS)
        self.assertEqual(sorted(everything["rooms"]), ["!other:test.local", ROOM])
        self.assertEqual(self.api(self.alice).get(VERSION).body["count"], 3)

    def test_empty_answers(self) -> None:
        self.assertEqual(self.get(KEYS), {"rooms": {}})
        self.assertEqual(self.get(f"{KEYS}/{ROOM}"), {"sessions": {}})
        response = self.api(self.alice).get(f"{KEYS}/{ROOM}/nope?version={self.version}")
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")

    def test_session_ids_may_hold_slashes(self) -> None:
        session = "abc/def+ghi"
        path = f"{KEYS}/{quote(ROOM)}/{quote(session, safe='')}"
        self.put(key(), path)
        self.assertEqual(list(self.get(f"{KEYS}/{ROOM}")["sessions"]), [session])
        self.assertEqual(self.get(path), key())

    def test_only_the_current_version_takes_keys(self) -> None:
        old = self.version
        self.version = self.new_backup()
        response = self.api(self.alice).put(f"{KEYS}/{ROOM}/s1?version={old}", key())
        self.assert_matrix_error(response, 403, "M_WRONG_ROOM_KEYS_VERSION")
        self.assertEqual(response.body["current_version"], self.version)
        response = self.api(self.alice).put(f"{KEYS}/{ROOM}/s1?version=nonsense", key())
        self.assert_matrix_error(response, 403, "M_WRONG_ROOM_KEYS_VERSION")

    def test_old_versions_can_still_be_read(self) -> None:
        self.put(key())
        old = self.version
        self.new_backup()
        response = self.api(self.alice).get(f"{KEYS}/{ROOM}/s1?version={old}")
        self.assertEqual(response.body, key())

    def test_without_any_backup_it_is_not_found(self) -> None:
        response = self.api(self.bob).put(f"{KEYS}/{ROOM}/s1?version=1", key())
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")
        response = self.api(self.bob).get(f"{KEYS}?version=1")
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")

    def test_version_is_required(self) -> None:
        for method in ("get", "put", "delete"):
            with self.subTest(method=method):
                response = getattr(self.api(self.alice), method)(f"{KEYS}/{ROOM}/s1")
                self.assert_matrix_error(response, 400, "M_MISSING_PARAM")

    def test_bad_key_data(self) -> None:
        url = f"{KEYS}/{ROOM}/s1?version={self.version}"
        api = self.api(self.alice)
        missing = key()
        del missing["is_verified"]
        self.assert_matrix_error(api.put(url, missing), 400, "M_MISSING_PARAM")
        for name, value in (
            ("is_verified", 1),
            ("first_message_index", "1"),
            ("forwarded_count", True),
            ("session_data", "x"),
        ):
            with self.subTest(name=name):
                self.assert_matrix_error(api.put(url, {**key(), name: value}), 400, "M_BAD_JSON")
        room_url = f"{KEYS}/{ROOM}?version={self.version}"
        self.assert_matrix_error(api.put(room_url, {}), 400, "M_MISSING_PARAM")
        self.assert_matrix_error(api.put(room_url, {"sessions": []}), 400, "M_BAD_JSON")
        self.assert_matrix_error(
            api.put(f"{KEYS}?version={self.version}", {}), 400, "M_MISSING_PARAM"
        )
        bad_rooms = {"rooms": {ROOM: {"sessions": {"s1": {**key(), "is_verified": None}}}}}
        self.assert_matrix_error(
            api.put(f"{KEYS}?version={self.version}", bad_rooms), 400, "M_BAD_JSON"
        )
        self.assertEqual(self.get(KEYS), {"rooms": {}})

    def test_delete_a_session_a_room_or_everything(self) -> None:
        self.put(
            {
                "rooms": {
                    ROOM: {"sessions": {"s1": key(), "s2": key()}},
                    "!b:test.local": {"sessions": {"s3": key()}},
                }
            },
            KEYS,
        )
        response = self.api(self.alice).delete(f"{KEYS}/{ROOM}/s1?version={self.version}")
        self.assertEqual(response.body, {"etag": "2", "count": 2})
        response = self.api(self.alice).delete(f"{KEYS}/{ROOM}?version={self.version}")
        self.assertEqual(response.body["count"], 1)
        response = self.api(self.alice).delete(f"{KEYS}?version={self.version}")
        self.assertEqual(response.body["count"], 0)
        response = self.api(self.alice).delete(f"{KEYS}?version=42")
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")
