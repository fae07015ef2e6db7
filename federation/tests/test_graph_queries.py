"""What other servers may read of a room: ACLs, being in the room, history visibility."""

from __future__ import annotations

from federation.queries.graph import (
    access_room_for_server,
    backfill_for_server,
    event_auth_for_server,
    event_for_server,
    missing_events_for_server,
    state_ids_at,
)
from matrixhs.errors import MatrixError
from matrixhs.protocol.events import EventTypes
from matrixhs.protocol.hashing import compute_event_id
from matrixhs.protocol.room_versions import get_room_version
from rooms.events import persist_federated_event
from rooms.models import Room
from rooms.tests.base import RoomTestCase
from rooms.tests.remote import RemoteServer

RV = get_room_version("11")


class GraphQueryTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.remote = RemoteServer("remote.example")
        self.carol = self.remote.user("carol")
        self.room_id = self.create_room(self.alice, preset="public_chat", room_version="11")
        self.room = Room.objects.get(room_id=self.room_id)

    def remote_join(self) -> str:
        event_id, pdu = self.remote.event(
            self.room_id,
            EventTypes.MEMBER,
            self.carol,
            {"membership": "join"},
            state_key=self.carol,
        )
        self.assertTrue(persist_federated_event(self.room_id, event_id, pdu).accepted)
        return event_id

    def ids(self, pdus: list[dict]) -> list[str]:
        return [compute_event_id(p, RV) for p in pdus]

    def test_a_server_not_in_the_room_reads_nothing(self) -> None:
        with self.assertRaises(MatrixError) as caught:
            access_room_for_server(self.room_id, "remote.example")
        self.assertEqual(caught.exception.errcode, "M_FORBIDDEN")
        with self.assertRaises(MatrixError) as caught:
            access_room_for_server("!unknown:test.local", "remote.example")
        self.assertEqual(caught.exception.errcode, "M_NOT_FOUND")
        self.remote_join()
        self.assertEqual(access_room_for_server(self.room_id, "remote.example"), self.room)

    def test_the_acl_shuts_a_server_out(self) -> None:
        self.remote_join()
        self.set_state(
            self.alice,
            self.room_id,
            "m.room.server_acl",
            {"allow": ["*"], "deny": ["remote.example"]},
        )
        with self.assertRaises(MatrixError) as caught:
            access_room_for_server(self.room_id, "remote.example")
        self.assertEqual(caught.exception.errcode, "M_FORBIDDEN")

    def test_backfill_and_missing_events_walk_the_graph(self) -> None:
        join = self.remote_join()
        sent = [self.send_ok(self.alice, self.room_id, str(i)) for i in range(5)]
        back = self.ids(backfill_for_server(self.room, "remote.example", [sent[-1]], 3))
        self.assertEqual(back, [sent[4], sent[3], sent[2]])
        missing = self.ids(
            missing_events_for_server(self.room, "remote.example", [join], [sent[-1]], 10, 0)
        )
        self.assertEqual(missing, sent[:4])

    def test_joined_only_history_is_redacted_for_servers_that_were_not_there(self) -> None:
        self.set_state(
            self.alice, self.room_id, "m.room.history_visibility", {"history_visibility": "joined"}
        )
        secret = self.send_ok(self.alice, self.room_id, "before carol")
        self.remote_join()
        after = self.send_ok(self.alice, self.room_id, "after carol")
        pdus = backfill_for_server(self.room, "remote.example", [after], 3)
        by_id = dict(zip(self.ids(pdus), pdus, strict=True))
        self.assertEqual(by_id[after]["content"]["body"], "after carol")
        self.assertEqual(by_id[secret]["content"], {})
        with self.assertRaises(MatrixError):
            event_for_server("remote.example", secret)
        self.assertEqual(
            event_for_server("remote.example", after)["content"]["body"], "after carol"
        )

    def test_state_ids_and_auth_chain(self) -> None:
        join = self.remote_join()
        message = self.send_ok(self.alice, self.room_id, "x")
        state, chain = state_ids_at(self.room, message)
        self.assertIn(join, state)
        self.assertFalse(set(state) & set(chain))
        auth = self.ids(event_auth_for_server(self.room, join))
        self.assertTrue(auth)
        self.assertNotIn(join, auth)
