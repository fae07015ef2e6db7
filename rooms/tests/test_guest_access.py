"""Guest accounts (spec "Guest access"): the endpoints they may call, the rooms they may
join (m.room.guest_access can_join), and their own membership only."""

from __future__ import annotations

from typing import Any

from django.test import override_settings

from matrixhs.testing import ApiClient
from rooms.models import RoomMembership
from rooms.tests.base import V3, RoomTestCase, q

CAN_JOIN = {"guest_access": "can_join"}


@override_settings(MATRIXHS_GUEST_ACCESS=True)
class GuestAccessTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        response = self.api().post(f"{V3}/register?kind=guest", {})
        self.assertEqual(response.status_code, 200, response.body)
        self.guest_id: str = response.body["user_id"]
        self.guest_device: str = response.body["device_id"]
        self.guest: ApiClient = self.api(token=response.body["access_token"])

    def membership(self, room_id: str, user_id: str) -> str | None:
        return (
            RoomMembership.objects.filter(room__room_id=room_id, user_id=user_id)
            .values_list("membership", flat=True)
            .first()
        )

    def guest_room(self, **body: Any) -> str:
        """A public room of Alice's that guests may join."""
        room = self.create_room(self.alice, preset="public_chat", **body)
        response = self.set_state(self.alice, room, "m.room.guest_access", CAN_JOIN)
        self.assertEqual(response.status_code, 200, response.body)
        return room

    def guest_state(self, room: str, event_type: str, state_key: str, content: Any) -> Any:
        return self.guest.put(f"{V3}/rooms/{q(room)}/state/{event_type}/{q(state_key)}", content)

    def test_guest_cannot_join_a_room_closed_to_guests(self) -> None:
        forbidden = self.create_room(self.alice, preset="public_chat")  # guest_access forbidden
        without = self.create_room(self.alice, preset="public_chat")
        self.set_state(self.alice, without, "m.room.guest_access", {})  # no guest_access value
        for room in (forbidden, without):
            for path in (f"join/{q(room)}", f"rooms/{q(room)}/join"):
                response = self.guest.post(f"{V3}/{path}", {})
                self.assert_matrix_error(response, 403, "M_GUEST_ACCESS_FORBIDDEN")
            self.assertIsNone(self.membership(room, self.guest_id))

    def test_guest_cannot_join_through_the_state_endpoint(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        content = {"membership": "join"}
        response = self.guest_state(room, "m.room.member", self.guest_id, content)
        self.assert_matrix_error(response, 403, "M_GUEST_ACCESS_FORBIDDEN")
        self.assertIsNone(self.membership(room, self.guest_id))

    def test_guest_joins_a_can_join_room_and_sends_any_event_type(self) -> None:
        room = self.guest_room()
        self.assertEqual(self.guest.post(f"{V3}/join/{q(room)}", {}).status_code, 200)
        self.assertEqual(self.membership(room, self.guest_id), "join")
        # Since v1.2 guests may send any event type ("Guest access", changed-in v1.2).
        for event_type in ("m.room.message", "m.room.encrypted"):
            url = f"{V3}/rooms/{q(room)}/send/{event_type}/{event_type}"
            response = self.guest.put(url, {"body": "hi", "msgtype": "m.text"})
            self.assertEqual(response.status_code, 200, response.body)
        leave = self.guest.post(f"{V3}/rooms/{q(room)}/leave", {})
        self.assertEqual(leave.status_code, 200)
        self.assertEqual(self.membership(room, self.guest_id), "leave")

    def test_guest_sets_only_its_own_membership(self) -> None:
        room = self.create_room(self.alice)  # private_chat: invite 0, guests can join
        self.invite(self.alice, room, self.bob)
        self.api(self.alice).post(f"{V3}/rooms/{q(room)}/invite", {"user_id": self.guest_id})
        self.assertEqual(self.guest.post(f"{V3}/join/{q(room)}", {}).status_code, 200)
        attempts = [
            ("@mallory:test.local", "invite"),
            ("@bob:test.local", "leave"),
            (self.guest_id, "knock"),
            (self.guest_id, "invite"),
        ]
        for target, membership in attempts:
            with self.subTest(target=target, membership=membership):
                content = {"membership": membership}
                response = self.guest_state(room, "m.room.member", target, content)
                self.assert_matrix_error(response, 403, "M_GUEST_ACCESS_FORBIDDEN")
        self.assertIsNone(self.membership(room, "@mallory:test.local"))
        self.assertEqual(self.membership(room, "@bob:test.local"), "invite")
        # Its own join (a display name change) and leave are fine.
        content = {"membership": "join", "displayname": "Guest"}
        response = self.guest_state(room, "m.room.member", self.guest_id, content)
        self.assertEqual(response.status_code, 200, response.body)
        response = self.guest_state(room, "m.room.member", self.guest_id, {"membership": "leave"})
        self.assertEqual(response.status_code, 200, response.body)
        self.assertEqual(self.membership(room, self.guest_id), "leave")

    def test_guests_leave_when_guest_access_is_withdrawn(self) -> None:
        room = self.guest_room()
        self.join(self.bob, room)
        self.guest.post(f"{V3}/join/{q(room)}", {})
        self.assertEqual(self.membership(room, self.guest_id), "join")
        response = self.set_state(
            self.alice, room, "m.room.guest_access", {"guest_access": "forbidden"}
        )
        self.assertEqual(response.status_code, 200, response.body)
        self.assertEqual(self.membership(room, self.guest_id), "leave")
        self.assertEqual(self.membership(room, "@bob:test.local"), "join")
        leave = RoomMembership.objects.get(room__room_id=room, user_id=self.guest_id)
        self.assertEqual(leave.sender, self.guest_id)  # the guest leaves by itself
        response = self.guest.put(f"{V3}/rooms/{q(room)}/send/m.room.message/after", {"body": "x"})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")

    def test_guest_endpoints_are_the_specs_list(self) -> None:
        room = self.guest_room()
        self.guest.post(f"{V3}/join/{q(room)}", {})
        event_id = self.send_ok(self.alice, room)
        user, device = q(self.guest_id), q(self.guest_device)
        refused = [
            ("POST", f"rooms/{q(room)}/receipt/m.read/{q(event_id)}", {}),
            ("POST", f"rooms/{q(room)}/read_markers", {"m.fully_read": event_id}),
            ("PUT", f"rooms/{q(room)}/typing/{user}", {"typing": True, "timeout": 1000}),
            ("PUT", f"rooms/{q(room)}/redact/{q(event_id)}/r1", {}),
            ("PUT", f"user/{user}/account_data/org.example", {"a": 1}),
            ("GET", f"user/{user}/account_data/org.example", None),
            ("POST", f"user/{user}/filter", {}),
            ("PUT", f"profile/{user}/avatar_url", {"avatar_url": "mxc://test.local/a"}),
            ("DELETE", f"devices/{device}", {}),
            ("POST", "createRoom", {}),
            ("POST", f"rooms/{q(room)}/invite", {"user_id": "@bob:test.local"}),
            ("POST", f"knock/{q(room)}", {}),
        ]
        for method, path, body in refused:
            with self.subTest(method=method, path=path):
                response = self.guest.request(method, f"{V3}/{path}", body)
                self.assert_matrix_error(response, 403, "M_GUEST_ACCESS_FORBIDDEN")
        response = self.guest.get(f"/_matrix/client/v1/rooms/{q(room)}/threads")
        self.assert_matrix_error(response, 403, "M_GUEST_ACCESS_FORBIDDEN")
        allowed = [
            ("PUT", f"profile/{user}/displayname", {"displayname": "Guest"}),
            ("GET", "devices", None),
            ("GET", f"devices/{device}", None),
            ("PUT", f"devices/{device}", {"display_name": "guest device"}),
            ("GET", "account/whoami", None),
            ("GET", f"rooms/{q(room)}/state", None),
            ("GET", f"rooms/{q(room)}/members", None),
            ("GET", f"rooms/{q(room)}/messages", None),
            ("GET", f"rooms/{q(room)}/event/{q(event_id)}", None),
            ("GET", f"rooms/{q(room)}/context/{q(event_id)}", None),
            ("GET", f"rooms/{q(room)}/initialSync", None),
            ("POST", "keys/query", {"device_keys": {}}),
        ]
        for method, path, body in allowed:
            with self.subTest(method=method, path=path):
                response = self.guest.request(method, f"{V3}/{path}", body)
                self.assertEqual(response.status_code, 200, response.body)
