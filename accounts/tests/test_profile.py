from __future__ import annotations

from django.test import override_settings

from accounts.models import User
from matrixhs.testing import MatrixTestCase

PROFILE = "/_matrix/client/v3/profile"


class ProfileTests(MatrixTestCase):
    def test_new_user_profile_has_localpart_as_displayname(self) -> None:
        response = self.api(self.bob).get(f"{PROFILE}/@alice:test.local")
        self.assertEqual(response.body, {"displayname": "alice"})

    def test_set_and_get_displayname(self) -> None:
        url = f"{PROFILE}/@alice:test.local/displayname"
        self.assertEqual(self.api(self.alice).put(url, {"displayname": "Alice"}).status_code, 200)
        self.assertEqual(self.api(self.bob).get(url).body, {"displayname": "Alice"})

    def test_set_avatar_url(self) -> None:
        url = f"{PROFILE}/@alice:test.local/avatar_url"
        self.api(self.alice).put(url, {"avatar_url": "mxc://test.local/abc"})
        profile = self.api(self.bob).get(f"{PROFILE}/@alice:test.local").body
        self.assertEqual(profile["avatar_url"], "mxc://test.local/abc")

    def test_avatar_url_must_be_mxc(self) -> None:
        url = f"{PROFILE}/@alice:test.local/avatar_url"
        response = self.api(self.alice).put(url, {"avatar_url": "https://evil.example/x.png"})
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")

    def test_custom_field_set_get_delete(self) -> None:
        url = f"{PROFILE}/@alice:test.local/m.tz"
        self.api(self.alice).put(url, {"m.tz": "Europe/Paris"})
        self.assertEqual(self.api(self.bob).get(url).body, {"m.tz": "Europe/Paris"})
        self.assertEqual(self.api(self.alice).delete(url).status_code, 200)
        self.assert_matrix_error(self.api(self.bob).get(url), 404, "M_NOT_FOUND")

    def test_cannot_set_another_users_profile(self) -> None:
        url = f"{PROFILE}/@alice:test.local/displayname"
        response = self.api(self.mallory).put(url, {"displayname": "pwned"})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertEqual(User.objects.get(pk=self.alice.pk).displayname, "alice")

    def test_displayname_must_be_a_string(self) -> None:
        url = f"{PROFILE}/@alice:test.local/displayname"
        self.assert_matrix_error(
            self.api(self.alice).put(url, {"displayname": 5}), 400, "M_BAD_JSON"
        )

    def test_displayname_too_long(self) -> None:
        url = f"{PROFILE}/@alice:test.local/displayname"
        response = self.api(self.alice).put(url, {"displayname": "x" * 300})
        self.assert_matrix_error(response, 400, "M_BAD_JSON")
        self.assertEqual(User.objects.get(pk=self.alice.pk).displayname, "alice")

    def test_body_without_the_key(self) -> None:
        url = f"{PROFILE}/@alice:test.local/displayname"
        response = self.api(self.alice).put(url, {"other": "x"})
        self.assert_matrix_error(response, 400, "M_MISSING_PARAM")

    def test_invalid_key(self) -> None:
        url = f"{PROFILE}/@alice:test.local/NotNamespaced"
        response = self.api(self.alice).put(url, {"NotNamespaced": "x"})
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")

    def test_key_too_long(self) -> None:
        key = "org." + "a" * 300
        response = self.api(self.alice).put(f"{PROFILE}/@alice:test.local/{key}", {key: 1})
        self.assert_matrix_error(response, 400, "M_KEY_TOO_LARGE")

    def test_profile_too_large(self) -> None:
        url = f"{PROFILE}/@alice:test.local/org.example.big"
        response = self.api(self.alice).put(url, {"org.example.big": "x" * 70000})
        self.assert_matrix_error(response, 400, "M_PROFILE_TOO_LARGE")
        self.assertEqual(User.objects.get(pk=self.alice.pk).profile_fields, {})

    def test_unknown_user(self) -> None:
        response = self.api(self.alice).get(f"{PROFILE}/@nobody:test.local")
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")

    def test_malformed_user_id(self) -> None:
        response = self.api(self.alice).get(f"{PROFILE}/alice")
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")

    def test_profile_is_readable_without_a_token(self) -> None:
        self.api(self.alice).put(f"{PROFILE}/@alice:test.local/displayname", {"displayname": "Al"})
        self.assertEqual(self.api().get(f"{PROFILE}/@alice:test.local").body, {"displayname": "Al"})
        response = self.api().get(f"{PROFILE}/@alice:test.local/displayname")
        self.assertEqual(response.body, {"displayname": "Al"})
        self.assert_matrix_error(
            self.api().get(f"{PROFILE}/@alice:test.local/avatar_url"), 404, "M_NOT_FOUND"
        )

    def test_setting_still_needs_a_token(self) -> None:
        response = self.api().put(f"{PROFILE}/@alice:test.local/displayname", {"displayname": "x"})
        self.assert_matrix_error(response, 401, "M_MISSING_TOKEN")

    def test_a_bad_token_is_refused_on_public_lookups(self) -> None:
        response = self.api(token="nope").get(f"{PROFILE}/@alice:test.local")
        self.assert_matrix_error(response, 401, "M_UNKNOWN_TOKEN")

    @override_settings(MATRIXHS_PROFILE_LOOKUP_REQUIRES_AUTH=True)
    def test_lookups_can_be_restricted_to_users(self) -> None:
        for path in ("", "/displayname", "/avatar_url"):
            response = self.api().get(f"{PROFILE}/@alice:test.local{path}")
            self.assert_matrix_error(response, 401, "M_MISSING_TOKEN")
        self.assertEqual(self.api(self.bob).get(f"{PROFILE}/@alice:test.local").status_code, 200)


class ProfileInRoomsTests(MatrixTestCase):
    def setUp(self) -> None:
        super().setUp()
        created = self.api(self.alice).post(
            "/_matrix/client/v3/createRoom", {"preset": "public_chat"}
        )
        self.room_id = created.body["room_id"]
        self.api(self.bob).post(f"/_matrix/client/v3/join/{self.room_id}")
        self.api(self.alice).post("/_matrix/client/v3/createRoom", {})  # alice alone there
        self.since = self.sync(self.bob)["next_batch"]

    def member_event(self) -> dict:
        path = f"/_matrix/client/v3/rooms/{self.room_id}/state/m.room.member/@alice:test.local"
        return self.api(self.bob).get(path + "?format=event").body

    def test_new_displayname_is_sent_to_joined_rooms(self) -> None:
        before = self.member_event()
        url = f"{PROFILE}/@alice:test.local/displayname"
        self.assertEqual(
            self.api(self.alice).put(url, {"displayname": "Alice A."}).status_code, 200
        )
        event = self.member_event()
        self.assertNotEqual(event["event_id"], before["event_id"])
        self.assertEqual(event["content"], {"membership": "join", "displayname": "Alice A."})
        self.assertEqual(event["unsigned"]["prev_content"], before["content"])
        timeline = self.sync(self.bob, since=self.since)["rooms"]["join"][self.room_id]
        events = timeline["timeline"]["events"]
        self.assertIn(event["event_id"], [e["event_id"] for e in events])

    def test_avatar_keeps_the_other_content(self) -> None:
        path = f"/_matrix/client/v3/rooms/{self.room_id}/state/m.room.member/@alice:test.local"
        self.api(self.alice).put(path, {"membership": "join", "displayname": "alice", "org.x": 1})
        url = f"{PROFILE}/@alice:test.local/avatar_url"
        self.api(self.alice).put(url, {"avatar_url": "mxc://test.local/abc"})
        self.assertEqual(
            self.member_event()["content"],
            {
                "membership": "join",
                "displayname": "alice",
                "avatar_url": "mxc://test.local/abc",
                "org.x": 1,
            },
        )
        self.api(self.alice).delete(url)
        self.assertEqual(
            self.member_event()["content"],
            {"membership": "join", "displayname": "alice", "org.x": 1},
        )

    def test_unchanged_profile_sends_nothing(self) -> None:
        before = self.member_event()
        self.api(self.alice).put(
            f"{PROFILE}/@alice:test.local/displayname", {"displayname": "alice"}
        )
        self.assertEqual(self.member_event()["event_id"], before["event_id"])

    def test_rooms_left_get_nothing(self) -> None:
        self.api(self.bob).put(f"{PROFILE}/@bob:test.local/displayname", {"displayname": "B"})
        self.api(self.bob).post(f"/_matrix/client/v3/rooms/{self.room_id}/leave")
        self.api(self.bob).put(f"{PROFILE}/@bob:test.local/displayname", {"displayname": "Bob"})
        path = f"/_matrix/client/v3/rooms/{self.room_id}/state/m.room.member/@bob:test.local"
        content = self.api(self.alice).get(path).body
        self.assertEqual(content["membership"], "leave")
        self.assertNotEqual(content.get("displayname"), "Bob")
