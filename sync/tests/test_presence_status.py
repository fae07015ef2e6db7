"""PUT/GET /presence/{userId}/status."""

from __future__ import annotations

from unittest import mock

from django.test import override_settings

from matrixhs.streams import Stream, current_position
from rooms.tests.base import RoomTestCase, q
from sync.models import Presence

URL = "/_matrix/client/v3/presence/{}/status"


class PresenceStatusTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)

    def put(self, body: dict, user=None, target=None):
        user = user or self.alice
        return self.api(user).put(URL.format(q((target or user).user_id)), body)

    def get(self, viewer, target):
        return self.api(viewer).get(URL.format(q(target.user_id)))

    def test_set_then_read_yourself_and_by_a_room_mate(self) -> None:
        self.assertEqual(self.put({"presence": "online", "status_msg": "here"}).body, {})
        own = self.get(self.alice, self.alice).body
        self.assertEqual(
            (own["presence"], own["status_msg"], own["currently_active"]), ("online", "here", True)
        )
        self.assertGreaterEqual(own["last_active_ago"], 0)
        self.assertEqual(self.get(self.bob, self.alice).body["presence"], "online")

    def test_never_set_reads_offline(self) -> None:
        self.assertEqual(self.get(self.alice, self.bob).body, {"presence": "offline"})

    def test_unavailable_keeps_last_activity_and_no_status_clears_it(self) -> None:
        self.put({"presence": "online", "status_msg": "lunch"})
        self.put({"presence": "unavailable"})
        body = self.get(self.bob, self.alice).body
        self.assertEqual(body["presence"], "unavailable")
        self.assertNotIn("status_msg", body)
        self.assertNotIn("currently_active", body)
        self.assertIn("last_active_ago", body)
        self.put({"presence": "offline", "status_msg": None})
        self.assertEqual(Presence.objects.get().state, "offline")

    def test_each_change_takes_a_position_and_wakes_room_mates(self) -> None:
        before = current_position(Stream.PRESENCE)
        with mock.patch("matrixhs.notifier.notify_users") as notify:
            with self.captureOnCommitCallbacks(execute=True):
                self.put({"presence": "unavailable"})
        self.assertEqual(set(notify.call_args.args[0]), {self.alice.user_id, self.bob.user_id})
        self.assertEqual(Presence.objects.get().stream_id, before + 1)
        with mock.patch("matrixhs.notifier.notify_users") as notify:
            with self.captureOnCommitCallbacks(execute=True):
                self.put({"presence": "unavailable"})  # nothing new
        notify.assert_not_called()
        self.assertEqual(current_position(Stream.PRESENCE), before + 1)

    def test_only_room_mates_may_look(self) -> None:
        self.assert_matrix_error(self.get(self.mallory, self.alice), 403, "M_FORBIDDEN")
        response = self.api(self.alice).get(URL.format(q("@nobody:test.local")))
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")
        response = self.api(self.alice).get(URL.format(q("@someone:elsewhere.example")))
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        response = self.api(self.alice).get(URL.format("alice"))
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")

    def test_cannot_set_someone_elses(self) -> None:
        response = self.put({"presence": "offline"}, user=self.mallory, target=self.alice)
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertFalse(Presence.objects.exists())

    def test_bad_bodies(self) -> None:
        cases = [
            ({}, "M_MISSING_PARAM"),
            ({"presence": 1}, "M_BAD_JSON"),
            ({"presence": "busy"}, "M_INVALID_PARAM"),
            ({"presence": ""}, "M_INVALID_PARAM"),
            ({"presence": "online", "status_msg": 5}, "M_BAD_JSON"),
            ({"presence": "online", "status_msg": "x" * 5000}, "M_INVALID_PARAM"),
        ]
        for body, errcode in cases:
            with self.subTest(body=body):
                self.assert_matrix_error(self.put(body), 400, errcode)
        self.assertFalse(Presence.objects.exists())

    @override_settings(MATRIXHS_PRESENCE_ENABLED=False)
    def test_disabled_accepts_and_forgets(self) -> None:
        self.assertEqual(self.put({"presence": "online", "status_msg": "hi"}).status_code, 200)
        self.assertFalse(Presence.objects.exists())
        self.assertEqual(self.get(self.bob, self.alice).body, {"presence": "offline"})
        self.assert_matrix_error(self.put({"presence": "busy"}), 400, "M_INVALID_PARAM")
