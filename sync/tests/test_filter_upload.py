"""POST /user/{userId}/filter."""

from __future__ import annotations

from matrixhs.testing import MatrixTestCase
from sync.models import Filter

URL = "/_matrix/client/v3/user/{}/filter"
EXAMPLE = {
    "room": {
        "state": {"types": ["m.room.*"], "not_rooms": ["!726s6s6q:example.com"]},
        "timeline": {"limit": 10, "types": ["m.room.message"], "not_senders": ["@spam:x.org"]},
        "ephemeral": {"types": ["m.receipt", "m.typing"]},
        "include_leave": False,
    },
    "presence": {"types": ["m.presence"], "not_senders": ["@alice:example.com"]},
    "event_format": "client",
    "event_fields": ["type", "content", "sender"],
}


class FilterUploadTests(MatrixTestCase):
    def upload(self, body: object, user=None):
        user = user or self.alice
        return self.api(user).post(URL.format(user.user_id), body)

    def test_upload_and_download(self) -> None:
        response = self.upload(EXAMPLE)
        self.assertEqual(response.status_code, 200, response.body)
        filter_id = response.body["filter_id"]
        self.assertFalse(filter_id.startswith("{"))
        got = self.api(self.alice).get(f"{URL.format(self.alice.user_id)}/{filter_id}")
        self.assertEqual(got.body, EXAMPLE)

    def test_ids_count_up_per_user_and_repeat_for_the_same_filter(self) -> None:
        self.assertEqual(self.upload({}).body, {"filter_id": "0"})
        self.assertEqual(self.upload(EXAMPLE).body, {"filter_id": "1"})
        self.assertEqual(self.upload({}).body, {"filter_id": "0"})
        self.assertEqual(self.upload({}, self.bob).body, {"filter_id": "0"})
        self.assertEqual(Filter.objects.count(), 3)

    def test_unknown_fields_are_kept(self) -> None:
        body = {"org.example.custom": {"x": 1}, "room": {"timeline": {"limit": 5}}}
        filter_id = self.upload(body).body["filter_id"]
        self.assertEqual(Filter.objects.get(filter_id=filter_id).definition, body)

    def test_only_for_yourself(self) -> None:
        response = self.api(self.mallory).post(URL.format(self.alice.user_id), {})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertFalse(Filter.objects.exists())

    def test_invalid_filters(self) -> None:
        cases = [
            {"event_format": "xml"},
            {"event_format": 1},
            {"event_fields": "type"},
            {"event_fields": ["type", 1]},
            {"room": {"timeline": {"limit": 0}}},
            {"room": {"timeline": {"limit": "10"}}},
            {"room": {"timeline": {"limit": 1.5}}},
            {"room": {"state": {"lazy_load_members": "true"}}},
            {"room": {"include_leave": "yes"}},
            {"room": {"rooms": "!a:b"}},
            {"room": []},
            {"room": {"ephemeral": []}},
            {"presence": {"types": "m.presence"}},
            {"presence": {"limit": -1}},
            {"account_data": {"not_senders": [None]}},
            {"room": {"timeline": {"rooms": ["not_a_room_id"]}}},
            {"room": {"not_rooms": ["#alias:example.com"]}},
            {"room": {"timeline": {"senders": ["not_a_sender_id"]}}},
            {"presence": {"not_senders": ["@:example.com"]}},
        ]
        for body in cases:
            with self.subTest(body=body):
                self.assert_matrix_error(self.upload(body), 400, "M_BAD_JSON")
        self.assertFalse(Filter.objects.exists())

    def test_body_must_be_a_json_object(self) -> None:
        self.assert_matrix_error(self.upload([]), 400, "M_BAD_JSON")
        response = self.api(self.alice).post(URL.format(self.alice.user_id), raw=b"{")
        self.assert_matrix_error(response, 400, "M_NOT_JSON")
