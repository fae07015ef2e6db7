"""Our users in rooms on other servers: joining through make_join/send_join, inviting a
remote user, being invited by one, rejecting such an invite."""

from __future__ import annotations

import json
from typing import Any

from federation.actions.inbound import receive_pdus
from federation.actions.remote_rooms import (
    RemoteJoinFailed,
    invite_remote_user,
    join_remote_room,
    leave_remote_room,
    receive_invite,
)
from federation.keys import get_signing_key
from federation.models import JoinAttempt, OutboundPdu
from matrixhs.errors import MatrixError
from matrixhs.protocol.room_versions import RoomVersion
from matrixhs.protocol.signing import (
    InvalidSignature,
    build_pdu,
    required_signature_servers,
    verify_event_signature,
    verify_key_of,
)
from rooms.models import Event, RoomMembership
from rooms.tests.base import V3, RoomTestCase, q
from rooms.tests.remote import RemoteRoom, RemoteServer
from sync.tests.test_sliding_sync import SlidingSyncTestCase


class Unreachable:
    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("unreachable")

        return fail


class RemoteRoomTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.server = RemoteServer("remote.example")
        self.room = RemoteRoom(self.server, version="11")

    def verify(self, pdu: dict[str, Any], rv: RoomVersion) -> None:
        keys = {
            "remote.example": verify_key_of(self.server.key),
            "test.local": verify_key_of(get_signing_key()),
        }
        for server in required_signature_servers(pdu, rv):
            if server not in keys:
                raise InvalidSignature(f"no key for {server}")
            verify_event_signature(pdu, server, keys[server], rv)

    def join(self, remote: Any = None, servers: list[str] | None = None) -> Event:
        return join_remote_room(
            self.alice,
            self.room.room_id,
            servers or ["remote.example"],
            {"displayname": "Alice"},
            remote or self.room,
            self.verify,
        )

    def test_joining_a_remote_room_brings_its_state(self) -> None:
        event = self.join()
        self.assertEqual(event.sender, "@alice:test.local")
        membership = RoomMembership.objects.get(
            room__room_id=self.room.room_id, user_id="@alice:test.local"
        )
        self.assertEqual(membership.membership, "join")
        name = self.api(self.alice).get(f"{V3}/rooms/{q(self.room.room_id)}/state/m.room.name/")
        self.assertEqual(name.body, {"name": "Over there"})
        rooms = self.sync(self.alice)["rooms"]["join"]
        self.assertIn(self.room.room_id, rooms)
        members = self.api(self.alice).get(f"{V3}/rooms/{q(self.room.room_id)}/joined_members")
        self.assertEqual(set(members.body["joined"]), {"@alice:test.local", self.room.creator})
        self.assertEqual(JoinAttempt.objects.get().status, "done")

    def test_after_joining_events_flow_both_ways(self) -> None:
        join = self.join()
        self.assertIn(join.event_id, self.room.events)  # send_join gave it to the room
        message_id, message = self.room.add(
            "m.room.message", self.room.creator, {"body": "welcome"}
        )
        self.assertEqual(
            receive_pdus("remote.example", [message], self.room, self.verify), {message_id: {}}
        )
        chunk = self.api(self.alice).get(f"{V3}/rooms/{q(self.room.room_id)}/messages?dir=b")
        self.assertIn("welcome", [e["content"].get("body") for e in chunk.body["chunk"]])
        mine = self.send_ok(self.alice, self.room.room_id, "thanks")
        self.assertEqual(
            list(OutboundPdu.objects.values_list("destination", "event_id")),
            [("remote.example", mine)],
        )

    def test_an_unreachable_server_is_skipped(self) -> None:
        class Mixed:
            def __init__(self, room: RemoteRoom) -> None:
                self.room = room

            def __getattr__(self, name: str) -> Any:
                real = getattr(self.room, name)

                def call(destination: str, *args: Any, **kwargs: Any) -> Any:
                    if destination == "down.example":
                        raise ConnectionError("down")
                    return real(destination, *args, **kwargs)

                return call

        self.join(Mixed(self.room), ["down.example", "remote.example"])
        attempt = JoinAttempt.objects.get()
        self.assertEqual(attempt.servers, ["down.example", "remote.example"])
        self.assertEqual(attempt.status, "done")

    def test_no_server_reachable_is_a_clear_error(self) -> None:
        with self.assertRaises(RemoteJoinFailed) as caught:
            self.join(Unreachable(), ["a.example", "b.example"])
        self.assertEqual((caught.exception.status, caught.exception.errcode), (404, "M_NOT_FOUND"))
        attempt = JoinAttempt.objects.get()
        self.assertEqual(attempt.status, "failed")
        self.assertIn("a.example", attempt.error)
        self.assertFalse(RoomMembership.objects.filter(user_id="@alice:test.local").exists())

    def test_a_forged_state_event_is_not_taken(self) -> None:
        liar = RemoteServer("remote.example")  # signs with a key we do not trust

        class Lying:
            def __init__(self, room: RemoteRoom) -> None:
                self.room = room

            def __getattr__(self, name: str) -> Any:
                return getattr(self.room, name)

            def send_membership(self, *args: Any) -> Any:
                answer = self.room.send_membership(*args)
                for pdu in answer["state"]:
                    if pdu["type"] == "m.room.name":
                        partial = {
                            k: v for k, v in pdu.items() if k not in ("hashes", "signatures")
                        }
                        partial["content"] = {"name": "forged"}
                        answer["state"].remove(pdu)
                        answer["state"].append(
                            build_pdu(partial, "remote.example", liar.key, self.room.rv)[1]
                        )
                        break
                return answer

        self.join(Lying(self.room))
        name = self.api(self.alice).get(f"{V3}/rooms/{q(self.room.room_id)}/state/m.room.name/")
        self.assertNotEqual(name.body.get("name"), "forged")

    def test_invite_only_room_refuses(self) -> None:
        private = RemoteRoom(self.server, version="11", join_rule="invite")
        with self.assertRaises(MatrixError):
            join_remote_room(
                self.alice, private.room_id, ["remote.example"], {}, private, self.verify
            )
        self.assertFalse(RoomMembership.objects.filter(user_id="@alice:test.local").exists())

    def test_inviting_a_remote_user(self) -> None:
        room_id = self.create_room(
            self.alice, preset="private_chat", room_version="11", name="Ours"
        )
        carol = self.server.user("carol")
        event = invite_remote_user(
            "@alice:test.local", room_id, carol, {"membership": "invite"}, self.room, self.verify
        )
        self.assertEqual(event.state_key, carol)
        membership = RoomMembership.objects.get(room__room_id=room_id, user_id=carol)
        self.assertEqual(membership.membership, "invite")
        self.assertIn("Ours", [e["content"].get("name") for e in self.room.invited_with])
        # Spec 1.16: full PDUs, the create event among them.
        create = [e for e in self.room.invited_with if e["type"] == "m.room.create"]
        self.assertEqual(len(create), 1)
        self.assertIn("signatures", create[0])
        self.assertIn("hashes", create[0])
        self.assertIn("remote.example", json.loads(event.json)["signatures"])

    def test_being_invited_and_rejecting(self) -> None:
        invite_id, invite = self.room.add(
            "m.room.member",
            self.room.creator,
            {"membership": "invite"},
            state_key="@alice:test.local",
        )
        stripped = [
            {
                "type": "m.room.name",
                "state_key": "",
                "sender": self.room.creator,
                "content": {"name": "Over there"},
            }
        ]
        answer = receive_invite(
            "remote.example",
            self.room.room_id,
            invite_id,
            {"room_version": "11", "event": invite, "invite_room_state": stripped},
            self.verify,
        )
        self.assertIn("test.local", answer["event"]["signatures"])
        membership = RoomMembership.objects.get(
            room__room_id=self.room.room_id, user_id="@alice:test.local"
        )
        self.assertEqual((membership.membership, membership.stripped_state), ("invite", stripped))
        leave = leave_remote_room(self.alice, self.room.room_id, ["remote.example"], {}, self.room)
        self.assertIsNotNone(leave)
        membership.refresh_from_db()
        self.assertEqual(membership.membership, "leave")
        self.assertIn(leave.event_id, self.room.events)

    def test_rejecting_with_the_inviter_unreachable_is_done_here(self) -> None:
        invite_id, invite = self.room.add(
            "m.room.member",
            self.room.creator,
            {"membership": "invite"},
            state_key="@alice:test.local",
        )
        receive_invite(
            "remote.example",
            self.room.room_id,
            invite_id,
            {"room_version": "11", "event": invite},
            self.verify,
        )
        self.assertIsNone(
            leave_remote_room(self.alice, self.room.room_id, ["remote.example"], {}, Unreachable())
        )
        membership = RoomMembership.objects.get(
            room__room_id=self.room.room_id, user_id="@alice:test.local"
        )
        self.assertEqual(membership.membership, "leave")

    def test_bad_invites_are_refused(self) -> None:
        invite_id, invite = self.room.add(
            "m.room.member",
            self.room.creator,
            {"membership": "invite"},
            state_key="@alice:test.local",
        )
        cases = [
            ("other.example", {"room_version": "11", "event": invite}, "M_INVALID_PARAM"),
            (
                "remote.example",
                {"room_version": "999", "event": invite},
                "M_INCOMPATIBLE_ROOM_VERSION",
            ),
            ("remote.example", {"room_version": "11"}, "M_INVALID_PARAM"),
        ]
        for origin, body, errcode in cases:
            with self.assertRaises(MatrixError) as caught:
                receive_invite(origin, self.room.room_id, invite_id, body, self.verify)
            self.assertEqual(caught.exception.errcode, errcode)
        tampered = {**invite, "content": {"membership": "invite", "x": 1}}
        with self.assertRaises(MatrixError):
            receive_invite(
                "remote.example",
                self.room.room_id,
                invite_id,
                {"room_version": "11", "event": tampered},
                self.verify,
            )
        self.assertFalse(RoomMembership.objects.filter(user_id="@alice:test.local").exists())


class RemoteInviteSyncTests(RemoteRoomTests):
    def invite_alice(self) -> str:
        invite_id, invite = self.room.add(
            "m.room.member",
            self.room.creator,
            {"membership": "invite"},
            state_key="@alice:test.local",
        )
        stripped = [
            {
                "type": "m.room.name",
                "state_key": "",
                "sender": self.room.creator,
                "content": {"name": "Over there"},
            },
        ]
        receive_invite(
            "remote.example",
            self.room.room_id,
            invite_id,
            {"room_version": "11", "event": invite, "invite_room_state": stripped},
            self.verify,
        )
        return invite_id

    def test_the_invite_shows_in_sync_with_its_stripped_state(self) -> None:
        since = self.sync(self.alice)["next_batch"]
        self.invite_alice()
        body = self.sync(self.alice, since=since, timeout="0")
        events = body["rooms"]["invite"][self.room.room_id]["invite_state"]["events"]
        types = {
            (e["type"], e.get("content", {}).get("name"), e.get("content", {}).get("membership"))
            for e in events
        }
        self.assertIn(("m.room.name", "Over there", None), types)
        self.assertIn(("m.room.member", None, "invite"), types)

    def test_the_invite_shows_in_sliding_sync(self) -> None:
        self.invite_alice()
        body = SlidingSyncTestCase.slide(
            self, self.alice, {"lists": {"all": {"ranges": [[0, 10]], "timeline_limit": 1}}}
        )
        room = body["rooms"][self.room.room_id]
        names = [e.get("content", {}).get("name") for e in room["invite_state"]]
        self.assertIn("Over there", names)

    def test_a_rejected_invite_moves_to_leave(self) -> None:
        self.invite_alice()
        since = self.sync(self.alice)["next_batch"]
        leave_remote_room(self.alice, self.room.room_id, ["remote.example"], {}, self.room)
        body = self.sync(self.alice, since=since, timeout="0")
        self.assertIn(self.room.room_id, body["rooms"]["leave"])
