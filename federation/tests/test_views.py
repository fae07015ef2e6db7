"""The federation API over HTTP: request authentication, transactions, joining through
this server, invites, reading the room graph, and the queries."""

from __future__ import annotations

from typing import Any
from unittest import mock

from django.conf import settings
from django.test import override_settings

from federation.models import InboundTransaction
from federation.tests.signed import federation_request, known_servers, x_matrix
from federation.tests.test_inbound import FakeRemote
from matrixhs.protocol.events import EventTypes
from rooms.models import Event, RoomMembership
from rooms.tests.base import RoomTestCase
from rooms.tests.remote import RemoteRoom, RemoteServer, sign_template

FED = "/_matrix/federation"


@override_settings(MATRIXHS_FEDERATION_ENABLED=True)
class FederationViewTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.server = RemoteServer("remote.example")
        self.stranger = RemoteServer("stranger.example")
        self.carol = self.server.user("carol")
        self.room_id = self.create_room(self.alice, preset="public_chat", room_version="11")
        self.enterContext(known_servers(self.server, self.stranger))
        self.remote = FakeRemote()
        self.enterContext(mock.patch("federation.peers.remote", return_value=self.remote))

    def fed(
        self,
        method: str,
        uri: str,
        body: Any = None,
        server: RemoteServer | None = None,
        authorization: str | None = None,
        check_spec: bool = True,
    ) -> Any:
        return federation_request(
            self.client,
            server or self.server,
            method,
            f"{FED}{uri}",
            body,
            authorization,
            check_spec,
        )

    def join_carol(self) -> str:
        made = self.fed("GET", f"/v1/make_join/{self.room_id}/{self.carol}?ver=10&ver=11")
        self.assertEqual(made.status_code, 200, made.body)
        event_id, pdu = sign_template(self.server, made.body["event"], made.body["room_version"])
        sent = self.fed("PUT", f"/v2/send_join/{self.room_id}/{event_id}", pdu)
        self.assertEqual(sent.status_code, 200, sent.body)
        self.assertTrue(sent.body["state"])
        self.assertIsInstance(sent.body["auth_chain"], list)
        return event_id

    # --- authentication ---------------------------------------------------------------

    def test_requests_without_a_valid_signature_are_refused_with_no_effect(self) -> None:
        uri = f"{FED}/v1/query/profile?user_id=@alice:test.local"
        cases = {
            "unsigned": "",
            "not x-matrix": "Bearer abc",
            "wrong destination": x_matrix(self.server, "GET", uri, destination="else.example"),
            "signed for another uri": x_matrix(self.server, "GET", uri + "&field=displayname"),
            "unknown server": x_matrix(RemoteServer("unknown.example"), "GET", uri),
        }
        for name, authorization in cases.items():
            with self.subTest(name):
                got = federation_request(
                    self.client, self.server, "GET", uri, authorization=authorization or " "
                )
                self.assert_matrix_error(got, 401, "M_UNAUTHORIZED")
        forged = x_matrix(self.stranger, "GET", uri).replace("stranger.example", "remote.example")
        got = federation_request(self.client, self.server, "GET", uri, authorization=forged)
        self.assert_matrix_error(got, 401, "M_UNAUTHORIZED")

    def test_a_body_is_part_of_what_is_signed(self) -> None:
        body = {"origin": "remote.example", "origin_server_ts": 1, "pdus": []}
        signed = x_matrix(self.server, "PUT", f"{FED}/v1/send/t1", body)
        tampered = {**body, "edus": [{"edu_type": "m.typing", "content": {}}]}
        got = self.fed("PUT", "/v1/send/t1", tampered, authorization=signed)
        self.assert_matrix_error(got, 401, "M_UNAUTHORIZED")
        self.assertFalse(InboundTransaction.objects.exists())

    @override_settings(MATRIXHS_FEDERATION_ENABLED=False)
    def test_disabled_federation_answers_unrecognized(self) -> None:
        got = self.fed("GET", "/v1/query/profile?user_id=@alice:test.local")
        self.assert_matrix_error(got, 404, "M_UNRECOGNIZED")

    # --- transactions -----------------------------------------------------------------

    def test_a_transaction_delivers_a_message_once(self) -> None:
        self.join_carol()
        event_id, pdu = self.server.event(
            self.room_id, "m.room.message", self.carol, {"msgtype": "m.text", "body": "hi"}
        )
        body = {"origin": "remote.example", "origin_server_ts": 1, "pdus": [pdu], "edus": []}
        got = self.fed("PUT", "/v1/send/txn1", body)
        self.assertEqual((got.status_code, got.body), (200, {"pdus": {event_id: {}}}))
        timeline = self.sync(self.alice)["rooms"]["join"][self.room_id]["timeline"]["events"]
        self.assertEqual(timeline[-1]["content"]["body"], "hi")
        again = self.fed("PUT", "/v1/send/txn1", body)
        self.assertEqual(again.body, got.body)
        self.assertEqual(Event.objects.filter(event_id=event_id).count(), 1)

    def test_forged_and_unauthorised_pdus_are_refused(self) -> None:
        self.join_carol()
        forged_id, forged = self.stranger.event(
            self.room_id, "m.room.message", self.carol, {"msgtype": "m.text", "body": "x"}
        )
        # stranger.example signs an event of carol (remote.example): not the sender's server
        outsider = self.stranger.user("eve")
        evil_id, evil = self.stranger.event(
            self.room_id, "m.room.name", outsider, {"name": "pwned"}, state_key=""
        )
        body = {"origin": "stranger.example", "origin_server_ts": 1, "pdus": [forged, evil]}
        got = self.fed("PUT", "/v1/send/t2", body, server=self.stranger)
        self.assertEqual(got.status_code, 200, got.body)
        self.assertIn("error", got.body["pdus"][forged_id])
        self.assertIn("error", got.body["pdus"][evil_id])
        self.assertFalse(Event.objects.filter(event_id=forged_id).exists())
        self.assertFalse(
            Event.objects.filter(event_id=evil_id, rejected_reason__isnull=True).exists()
        )
        state = self.api(self.alice).get(f"/_matrix/client/v3/rooms/{self.room_id}/state")
        self.assertNotIn("pwned", str(state.body))

    def test_transaction_limits_and_origin(self) -> None:
        too_many = {"origin": "remote.example", "origin_server_ts": 1, "pdus": [{}] * 51}
        self.assert_matrix_error(self.fed("PUT", "/v1/send/t3", too_many), 400, "M_BAD_JSON")
        other = {"origin": "stranger.example", "origin_server_ts": 1, "pdus": []}
        self.assert_matrix_error(self.fed("PUT", "/v1/send/t4", other), 403, "M_FORBIDDEN")
        self.assert_matrix_error(self.fed("PUT", "/v1/send/t5", [1]), 400, "M_BAD_JSON")
        self.assertFalse(InboundTransaction.objects.exists())

    def test_acl_denied_server_is_ignored(self) -> None:
        self.join_carol()
        self.set_state(
            self.alice,
            self.room_id,
            EventTypes.SERVER_ACL,
            {"allow": ["*"], "deny": ["remote.example"]},
        )
        event_id, pdu = self.server.event(
            self.room_id, "m.room.message", self.carol, {"msgtype": "m.text", "body": "no"}
        )
        got = self.fed("PUT", "/v1/send/t6", {"origin": "remote.example", "pdus": [pdu]})
        self.assertEqual(got.body, {"pdus": {}})
        self.assertFalse(Event.objects.filter(event_id=event_id).exists())
        self.assert_matrix_error(
            self.fed("GET", f"/v1/state_ids/{self.room_id}?event_id={event_id}"), 403, "M_FORBIDDEN"
        )

    # --- membership ---------------------------------------------------------------------

    def test_join_leave_through_this_server(self) -> None:
        self.join_carol()
        member = RoomMembership.objects.get(room__room_id=self.room_id, user_id=self.carol)
        self.assertEqual(member.membership, "join")
        made = self.fed("GET", f"/v1/make_leave/{self.room_id}/{self.carol}")
        event_id, pdu = sign_template(self.server, made.body["event"], made.body["room_version"])
        sent = self.fed("PUT", f"/v2/send_leave/{self.room_id}/{event_id}", pdu)
        self.assertEqual((sent.status_code, sent.body), (200, {}))
        member.refresh_from_db()
        self.assertEqual(member.membership, "leave")

    def test_a_restricted_join_is_authorised_and_countersigned_here(self) -> None:
        self.join_carol()  # carol is in the allowed room
        restricted = self.create_room(
            self.alice,
            room_version="11",
            initial_state=[
                {
                    "type": "m.room.join_rules",
                    "state_key": "",
                    "content": {
                        "join_rule": "restricted",
                        "allow": [{"type": "m.room_membership", "room_id": self.room_id}],
                    },
                }
            ],
        )
        made = self.fed("GET", f"/v1/make_join/{restricted}/{self.carol}?ver=11")
        self.assertEqual(made.status_code, 200, made.body)
        content = made.body["event"]["content"]
        self.assertEqual(content["join_authorised_via_users_server"], self.alice.user_id)
        event_id, pdu = sign_template(self.server, made.body["event"], "11")
        sent = self.fed("PUT", f"/v2/send_join/{restricted}/{event_id}", pdu)
        self.assertEqual(sent.status_code, 200, sent.body)
        self.assertIn(settings.MATRIXHS_SERVER_NAME, sent.body["event"]["signatures"])
        self.assertTrue(
            RoomMembership.objects.filter(
                room__room_id=restricted, user_id=self.carol, membership="join"
            ).exists()
        )
        # dave is in no allowed room: no template, and no signature for a forged join.
        dave = self.server.user("dave")
        refused = self.fed("GET", f"/v1/make_join/{restricted}/{dave}?ver=11")
        self.assertEqual(refused.status_code, 403, refused.body)
        forged = {**made.body["event"], "sender": dave, "state_key": dave}
        event_id, pdu = sign_template(self.server, forged, "11")
        sent = self.fed("PUT", f"/v2/send_join/{restricted}/{event_id}", pdu)
        self.assertEqual(sent.status_code, 403, sent.body)
        self.assertFalse(
            RoomMembership.objects.filter(
                room__room_id=restricted, user_id=dave, membership="join"
            ).exists()
        )

    def test_make_join_refuses_other_servers_users_and_old_versions(self) -> None:
        uri = f"/v1/make_join/{self.room_id}/{self.carol}?ver=11"
        self.assert_matrix_error(self.fed("GET", uri, server=self.stranger), 403, "M_FORBIDDEN")
        got = self.fed("GET", f"/v1/make_join/{self.room_id}/{self.carol}")
        self.assert_matrix_error(got, 400, "M_INCOMPATIBLE_ROOM_VERSION")
        self.assertEqual(got.body["room_version"], "11")

    def test_an_invite_from_a_remote_room_reaches_the_invitee(self) -> None:
        room = RemoteRoom(self.server)
        event_id, pdu = room.add(
            "m.room.member", room.creator, {"membership": "invite"}, state_key="@bob:test.local"
        )
        stripped = [
            {
                "type": "m.room.name",
                "state_key": "",
                "sender": room.creator,
                "content": {"name": "Over there"},
            }
        ]
        body = {"event": pdu, "room_version": "11", "invite_room_state": stripped}
        # The answer is the inviter's event signed: the spec's schema still requires the
        # "origin" field, which events of room versions 11+ need not have.
        got = self.fed("PUT", f"/v2/invite/{room.room_id}/{event_id}", body, check_spec=False)
        self.assertEqual(got.status_code, 200, got.body)
        self.assertIn("test.local", got.body["event"]["signatures"])
        self.assertIn(room.room_id, self.sync(self.bob)["rooms"]["invite"])
        forged = {**body, "event": {**pdu, "sender": "@mallory:remote.example"}}
        got = self.fed("PUT", f"/v2/invite/{room.room_id}/{event_id}", forged)
        self.assert_matrix_error(got, 400, "M_INVALID_PARAM")

    # --- reading ------------------------------------------------------------------------

    def test_a_server_in_the_room_reads_state_events_and_history(self) -> None:
        join_id = self.join_carol()
        message_id = self.send_ok(self.alice, self.room_id, "m1")
        ids = self.fed("GET", f"/v1/state_ids/{self.room_id}?event_id={message_id}")
        self.assertEqual(ids.status_code, 200, ids.body)
        self.assertIn(join_id, ids.body["pdu_ids"])
        state = self.fed("GET", f"/v1/state/{self.room_id}?event_id={message_id}")
        self.assertEqual(len(state.body["pdus"]), len(ids.body["pdu_ids"]))
        event = self.fed("GET", f"/v1/event/{message_id}")
        self.assertEqual(event.body["pdus"][0]["content"]["body"], "m1")
        auth = self.fed("GET", f"/v1/event_auth/{self.room_id}/{message_id}")
        self.assertTrue(auth.body["auth_chain"])
        back = self.fed("GET", f"/v1/backfill/{self.room_id}?v={message_id}&limit=3")
        self.assertEqual(len(back.body["pdus"]), 3)
        self.assertEqual(back.body["origin"], "test.local")
        missing = self.fed(
            "POST",
            f"/v1/get_missing_events/{self.room_id}",
            {"earliest_events": [join_id], "latest_events": [message_id], "limit": 5},
        )
        self.assertEqual(missing.status_code, 200, missing.body)
        self.assertEqual(missing.body["events"], [])  # message_id's prev is the join itself

    def test_a_server_not_in_the_room_reads_nothing(self) -> None:
        message_id = self.send_ok(self.alice, self.room_id, "secret")
        for uri in (
            f"/v1/state_ids/{self.room_id}?event_id={message_id}",
            f"/v1/state/{self.room_id}?event_id={message_id}",
            f"/v1/backfill/{self.room_id}?v={message_id}",
            f"/v1/event_auth/{self.room_id}/{message_id}",
        ):
            with self.subTest(uri):
                self.assert_matrix_error(
                    self.fed("GET", uri, server=self.stranger), 403, "M_FORBIDDEN"
                )
        self.assert_matrix_error(self.fed("GET", f"/v1/event/{message_id}"), 404, "M_NOT_FOUND")

    # --- queries ------------------------------------------------------------------------

    def test_profile_and_directory_queries(self) -> None:
        self.api(self.alice).put(
            "/_matrix/client/v3/profile/@alice:test.local/displayname", {"displayname": "Alice"}
        )
        got = self.fed("GET", "/v1/query/profile?user_id=@alice:test.local")
        self.assertEqual(got.body.get("displayname"), "Alice")
        got = self.fed("GET", "/v1/query/profile?user_id=@alice:test.local&field=avatar_url")
        self.assertEqual(got.body, {})
        self.assert_matrix_error(
            self.fed("GET", "/v1/query/profile?user_id=@nobody:test.local"), 404, "M_NOT_FOUND"
        )
        self.api(self.alice).put(
            "/_matrix/client/v3/directory/room/%23hall:test.local", {"room_id": self.room_id}
        )
        self.join_carol()
        got = self.fed("GET", "/v1/query/directory?room_alias=%23hall:test.local")
        self.assertEqual(
            got.body, {"room_id": self.room_id, "servers": ["test.local", "remote.example"]}
        )
        self.assert_matrix_error(
            self.fed("GET", "/v1/query/directory?room_alias=%23none:test.local"), 404, "M_NOT_FOUND"
        )

    def test_public_rooms_only_when_allowed(self) -> None:
        self.assert_matrix_error(self.fed("GET", "/v1/publicRooms"), 403, "M_FORBIDDEN")
        with override_settings(MATRIXHS_ALLOW_PUBLIC_ROOMS_OVER_FEDERATION=True):
            self.api(self.alice).put(
                f"/_matrix/client/v3/directory/list/room/{self.room_id}", {"visibility": "public"}
            )
            got = self.fed("GET", "/v1/publicRooms?limit=5")
            self.assertEqual([r["room_id"] for r in got.body["chunk"]], [self.room_id])
            got = self.fed("POST", "/v1/publicRooms", {"filter": {"generic_search_term": "zz"}})
            self.assertEqual(got.body["chunk"], [])
