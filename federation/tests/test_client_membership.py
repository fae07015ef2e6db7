"""The client API on rooms of other servers: joining by room ID with ``via`` and by an
alias of another server, inviting their users (also from createRoom), rejecting their
invites, knocking. The other server is a pretend one (rooms.tests.remote)."""

from __future__ import annotations

from typing import Any
from unittest import mock

from django.test import override_settings

from federation.tests.signed import federation_request, known_servers
from federation.tests.test_remote_rooms import Unreachable
from matrixhs.errors import MatrixError, NotFound
from rooms.models import RoomMembership
from rooms.tests.base import V3, RoomTestCase, q
from rooms.tests.remote import RemoteRoom, RemoteServer


class PretendServer:
    """remote.example as our federation client sees it: one room, one alias."""

    def __init__(self, room: RemoteRoom) -> None:
        self.room = room
        self.aliases = {"#hall:remote.example": room.room_id}
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.room, name)

    def query_directory(self, destination: str, room_alias: str) -> dict[str, Any]:
        self.calls.append("query_directory")
        if room_alias not in self.aliases:
            raise NotFound("Room alias not found")
        return {"room_id": self.aliases[room_alias], "servers": ["remote.example"]}

    def send_membership(
        self, destination: str, room_id: str, event_id: str, pdu: Any, membership: str
    ) -> Any:
        self.calls.append(f"send_{membership}")
        answer = self.room.send_membership(destination, room_id, event_id, pdu, membership)
        if membership == "knock":
            return {
                "knock_room_state": [
                    {
                        "type": "m.room.name",
                        "state_key": "",
                        "sender": self.room.creator,
                        "content": {"name": "Over there"},
                    }
                ]
            }
        return answer


@override_settings(MATRIXHS_FEDERATION_ENABLED=True)
class ClientOnRemoteRoomsTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.server = RemoteServer("remote.example")
        self.room = RemoteRoom(self.server, version="11")
        self.remote = PretendServer(self.room)
        self.enterContext(known_servers(self.server))
        self.enterContext(mock.patch("federation.peers.remote", return_value=self.remote))

    def post(self, path: str, body: Any = None) -> Any:
        return self.api(self.alice).post(f"{V3}{path}", body if body is not None else {})

    def test_join_by_room_id_through_via(self) -> None:
        got = self.post(f"/join/{q(self.room.room_id)}?via=remote.example")
        self.assertEqual(got.status_code, 200, got.body)
        self.assertIn(self.room.room_id, self.sync(self.alice)["rooms"]["join"])
        self.assertIn("send_join", self.remote.calls)
        # Once in, a message is ours to send (and queued for remote.example)
        self.send_ok(self.alice, self.room.room_id, "hello over there")

    def test_join_by_an_alias_of_another_server(self) -> None:
        got = self.post(f"/join/{q('#hall:remote.example')}")
        self.assertEqual((got.status_code, got.body), (200, {"room_id": self.room.room_id}))
        lookup = self.api(self.alice).get(f"{V3}/directory/room/{q('#hall:remote.example')}")
        self.assertEqual(lookup.body, {"room_id": self.room.room_id, "servers": ["remote.example"]})
        missing = self.post(f"/join/{q('#nope:remote.example')}")
        self.assert_matrix_error(missing, 404, "M_NOT_FOUND")

    def test_no_server_answers(self) -> None:
        with mock.patch("federation.peers.remote", return_value=Unreachable()):
            got = self.post(f"/join/{q(self.room.room_id)}?via=remote.example")
        self.assert_matrix_error(got, 404, "M_NOT_FOUND")
        self.assert_matrix_error(
            self.post(f"/join/{q(self.room.room_id)}?via=bad_name!"), 400, "M_INVALID_PARAM"
        )

    @override_settings(MATRIXHS_FEDERATION_ENABLED=False)
    def test_without_federation_remote_rooms_are_refused(self) -> None:
        got = self.post(f"/join/{q(self.room.room_id)}?via=remote.example")
        self.assert_matrix_error(got, 403, "M_FORBIDDEN")
        self.assertEqual(self.remote.calls, [])

    def test_inviting_a_user_of_another_server(self) -> None:
        room_id = self.create_room(self.alice)
        got = self.post(f"/rooms/{q(room_id)}/invite", {"user_id": "@dave:remote.example"})
        self.assertEqual(got.status_code, 200, got.body)
        member = RoomMembership.objects.get(room__room_id=room_id, user_id="@dave:remote.example")
        self.assertEqual(member.membership, "invite")
        self.assertEqual(self.remote.calls.count("invite"), 1)

    def test_create_room_inviting_a_user_of_another_server(self) -> None:
        got = self.post(
            "/createRoom",
            {
                "invite": ["@dave:remote.example"],
                "is_direct": True,
                "preset": "trusted_private_chat",
            },
        )
        self.assertEqual(got.status_code, 200, got.body)
        member = RoomMembership.objects.get(
            room__room_id=got.body["room_id"], user_id="@dave:remote.example"
        )
        self.assertEqual(member.membership, "invite")

    def test_a_refused_invite_is_an_error(self) -> None:
        room_id = self.create_room(self.alice)

        def refuse(*args: Any) -> Any:
            raise MatrixError(403, "M_FORBIDDEN", "no thanks")

        with mock.patch.object(self.room, "invite", refuse):
            got = self.post(f"/rooms/{q(room_id)}/invite", {"user_id": "@dave:remote.example"})
        self.assert_matrix_error(got, 403, "M_FORBIDDEN")
        self.assertFalse(RoomMembership.objects.filter(user_id="@dave:remote.example").exists())

    def test_rejecting_an_invite_goes_through_the_inviting_server(self) -> None:
        event_id, pdu = self.room.add(
            "m.room.member",
            self.room.creator,
            {"membership": "invite"},
            state_key="@alice:test.local",
        )
        body = {"event": pdu, "room_version": "11", "invite_room_state": []}
        got = federation_request(
            self.client,
            self.server,
            "PUT",
            f"/_matrix/federation/v2/invite/{self.room.room_id}/{event_id}",
            body,
            check_spec=False,
        )
        self.assertEqual(got.status_code, 200, got.body)
        left = self.post(f"/rooms/{q(self.room.room_id)}/leave")
        self.assertEqual(left.status_code, 200, left.body)
        self.assertIn("send_leave", self.remote.calls)
        self.assertNotIn(self.room.room_id, self.sync(self.alice)["rooms"].get("invite", {}))

    def test_accepting_an_invite_joins_through_the_inviting_server(self) -> None:
        event_id, pdu = self.room.add(
            "m.room.member",
            self.room.creator,
            {"membership": "invite"},
            state_key="@alice:test.local",
        )
        body = {"event": pdu, "room_version": "11", "invite_room_state": []}
        federation_request(
            self.client,
            self.server,
            "PUT",
            f"/_matrix/federation/v2/invite/{self.room.room_id}/{event_id}",
            body,
            check_spec=False,
        )
        got = self.post(f"/rooms/{q(self.room.room_id)}/join")
        self.assertEqual(got.status_code, 200, got.body)
        self.assertIn(self.room.room_id, self.sync(self.alice)["rooms"]["join"])

    def test_knocking_on_a_room_of_another_server(self) -> None:
        got = self.post(f"/knock/{q(self.room.room_id)}?via=remote.example", {"reason": "hi"})
        self.assertEqual(got.status_code, 200, got.body)
        self.assertIn("send_knock", self.remote.calls)
        knocks = self.sync(self.alice)["rooms"].get("knock", {})
        self.assertIn(self.room.room_id, knocks)

    def test_history_from_before_the_join_is_backfilled_in_order(self) -> None:
        for n in range(30):
            self.room.add(
                "m.room.message", self.room.creator, {"msgtype": "m.text", "body": f"m{n}"}
            )
        self.post(f"/join/{q(self.room.room_id)}?via=remote.example")
        bodies: list[str] = []
        token = None
        for _ in range(10):  # bounded: 30 messages in pages of 8
            query = "?dir=b&limit=8" + (f"&from={token}" if token else "")
            page = self.api(self.alice).get(f"{V3}/rooms/{q(self.room.room_id)}/messages{query}")
            self.assertEqual(page.status_code, 200, page.body)
            bodies += [
                e["content"]["body"] for e in page.body["chunk"] if e["type"] == "m.room.message"
            ]
            token = page.body.get("end")
            if token is None:
                break
        self.assertEqual(bodies, [f"m{n}" for n in reversed(range(30))])
        self.assertIn("backfill", self.remote.calls)

    def test_history_missed_while_out_of_the_room_is_backfilled_in_order(self) -> None:
        # Joined, left, and back: what was said in between is a hole under the rejoin,
        # with our older events below it. Pages must not skip from one side to the other.
        self.post(f"/join/{q(self.room.room_id)}?via=remote.example")
        self.assertEqual(self.post(f"/rooms/{q(self.room.room_id)}/leave").status_code, 200)
        for n in range(30):
            self.room.add(
                "m.room.message", self.room.creator, {"msgtype": "m.text", "body": f"m{n}"}
            )
        self.assertEqual(self.post(f"/join/{q(self.room.room_id)}").status_code, 200)
        bodies: list[str] = []
        token = None
        for _ in range(10):  # bounded: 30 messages in pages of 8
            query = "?dir=b&limit=8" + (f"&from={token}" if token else "")
            page = self.api(self.alice).get(f"{V3}/rooms/{q(self.room.room_id)}/messages{query}")
            self.assertEqual(page.status_code, 200, page.body)
            bodies += [
                e["content"]["body"] for e in page.body["chunk"] if e["type"] == "m.room.message"
            ]
            token = page.body.get("end")
            if token is None:
                break
        self.assertEqual(bodies, [f"m{n}" for n in reversed(range(30))])
