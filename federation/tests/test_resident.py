"""make_join/send_join, make_leave/send_leave, make_knock/send_knock as the resident server."""

from __future__ import annotations

from typing import Any

from federation.actions.resident import make_membership, send_membership
from federation.models import OutboundPdu
from federation.tests.test_inbound import FakeRemote
from matrixhs.errors import MatrixError
from matrixhs.protocol.events import EventTypes
from matrixhs.protocol.hashing import compute_event_id
from matrixhs.protocol.room_versions import RoomVersion, get_room_version
from matrixhs.protocol.signing import (
    InvalidSignature,
    required_signature_servers,
    verify_event_signature,
    verify_key_of,
)
from rooms.models import RoomMembership
from rooms.tests.base import RoomTestCase
from rooms.tests.remote import RemoteServer, sign_template


class ResidentTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.server = RemoteServer("remote.example")
        self.other = RemoteServer("other.example")
        self.carol = self.server.user("carol")
        self.room_id = self.create_room(self.alice, preset="public_chat", room_version="11")

    def verify(self, pdu: dict[str, Any], rv: RoomVersion) -> None:
        keys = {s.name: verify_key_of(s.key) for s in (self.server, self.other)}
        for server in required_signature_servers(pdu, rv):
            if server not in keys:
                raise InvalidSignature(f"no key for {server}")
            verify_event_signature(pdu, server, keys[server], rv)

    def join(self, user_id: str, server: RemoteServer) -> tuple[str, dict[str, Any]]:
        template = make_membership(server.name, self.room_id, user_id, "join", ["10", "11", "12"])
        self.assertEqual(template["room_version"], "11")
        event_id, pdu = sign_template(server, template["event"], "11", displayname="Carol")
        answer = send_membership(
            server.name, self.room_id, event_id, pdu, "join", FakeRemote(), self.verify
        )
        return event_id, answer

    def test_a_remote_user_joins_a_public_room(self) -> None:
        _, answer = self.join(self.carol, self.server)
        membership = RoomMembership.objects.get(room__room_id=self.room_id, user_id=self.carol)
        self.assertEqual((membership.membership, membership.displayname), ("join", "Carol"))
        rv = get_room_version("11")
        state_types = {(p["type"], p["state_key"]) for p in answer["state"]}
        self.assertIn((EventTypes.CREATE, ""), state_types)
        self.assertIn((EventTypes.MEMBER, "@alice:test.local"), state_types)
        self.assertNotIn((EventTypes.MEMBER, self.carol), state_types)  # state *before* the join
        chain_ids = {compute_event_id(p, rv) for p in answer["auth_chain"]}
        state_ids = {compute_event_id(p, rv) for p in answer["state"]}
        self.assertFalse(chain_ids & state_ids)
        self.assertEqual(answer["origin"], "test.local")
        self.assertFalse(answer["members_omitted"])

    def test_the_join_is_passed_on_to_the_other_servers_but_not_back(self) -> None:
        dave = self.other.user("dave")
        self.join(dave, self.other)
        OutboundPdu.objects.all().delete()
        event_id, _ = self.join(self.carol, self.server)
        queued = set(OutboundPdu.objects.values_list("destination", "event_id"))
        self.assertEqual(queued, {("other.example", event_id)})

    def test_make_join_checks_the_user_server_and_version(self) -> None:
        with self.assertRaises(MatrixError) as caught:
            make_membership("other.example", self.room_id, self.carol, "join", ["11"])
        self.assertEqual(caught.exception.errcode, "M_FORBIDDEN")
        with self.assertRaises(MatrixError) as caught:
            make_membership("remote.example", self.room_id, self.carol, "join", ["9"])
        self.assertEqual(caught.exception.errcode, "M_INCOMPATIBLE_ROOM_VERSION")
        with self.assertRaises(MatrixError) as caught:
            make_membership("remote.example", "!nope:test.local", self.carol, "join", ["11"])
        self.assertEqual(caught.exception.errcode, "M_NOT_FOUND")

    def test_no_join_into_an_invite_only_room(self) -> None:
        private = self.create_room(self.alice, room_version="11")
        with self.assertRaises(MatrixError) as caught:
            make_membership("remote.example", private, self.carol, "join", ["11"])
        self.assertEqual(caught.exception.errcode, "M_FORBIDDEN")

    def test_send_join_refuses_someone_elses_event(self) -> None:
        template = make_membership("remote.example", self.room_id, self.carol, "join", ["11"])
        event_id, pdu = sign_template(self.server, template["event"], "11")
        for origin, membership in (("other.example", "join"), ("remote.example", "leave")):
            with self.assertRaises(MatrixError) as caught:
                send_membership(
                    origin, self.room_id, event_id, pdu, membership, FakeRemote(), self.verify
                )
            self.assertEqual(caught.exception.errcode, "M_INVALID_PARAM")
        pdu["content"]["membership"] = "leave"
        with self.assertRaises(MatrixError):
            send_membership(
                "remote.example", self.room_id, event_id, pdu, "join", FakeRemote(), self.verify
            )
        self.assertFalse(RoomMembership.objects.filter(user_id=self.carol).exists())

    def test_remote_user_leaves(self) -> None:
        self.join(self.carol, self.server)
        template = make_membership("remote.example", self.room_id, self.carol, "leave", [])
        event_id, pdu = sign_template(self.server, template["event"], "11")
        answer = send_membership(
            "remote.example", self.room_id, event_id, pdu, "leave", FakeRemote(), self.verify
        )
        self.assertEqual(answer, {})
        membership = RoomMembership.objects.get(room__room_id=self.room_id, user_id=self.carol)
        self.assertEqual(membership.membership, "leave")

    def test_remote_user_knocks(self) -> None:
        knockable = self.create_room(self.alice, room_version="11")
        self.set_state(self.alice, knockable, "m.room.join_rules", {"join_rule": "knock"})
        self.set_state(self.alice, knockable, "m.room.name", {"name": "Knock here"})
        template = make_membership("remote.example", knockable, self.carol, "knock", ["11"])
        event_id, pdu = sign_template(self.server, template["event"], "11")
        answer = send_membership(
            "remote.example", knockable, event_id, pdu, "knock", FakeRemote(), self.verify
        )
        names = [e["content"].get("name") for e in answer["knock_room_state"]]
        self.assertIn("Knock here", names)
        # Spec 1.16: full PDUs, the create event among them.
        [create] = [e for e in answer["knock_room_state"] if e["type"] == "m.room.create"]
        self.assertIn("signatures", create)
        membership = RoomMembership.objects.get(room__room_id=knockable, user_id=self.carol)
        self.assertEqual(membership.membership, "knock")
