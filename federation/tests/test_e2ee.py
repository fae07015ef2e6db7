"""Keys across servers: other servers ask for our users' devices and keys
(/user/devices, /user/keys/query, /user/keys/claim), and our users' /keys/query and
/keys/claim about their users are asked of their servers, in parallel, with failures."""

from __future__ import annotations

import threading
from typing import Any
from unittest import mock

from django.test import override_settings

from e2ee.tests.support import CLAIM, ClientDevice, E2eeTestCase
from federation.models import OutboundEdu
from federation.tests.signed import federation_request, known_servers
from matrixhs.protocol.events import EventTypes
from rooms.events import persist_federated_event
from rooms.tests.remote import RemoteServer

FED = "/_matrix/federation/v1"


class RemoteKeyServer:
    """remote.example's key answers (and a second server that hangs)."""

    def __init__(self) -> None:
        self.carol = ClientDevice("@carol:remote.example", "CAROLPHONE")
        self.asked: list[tuple[str, Any]] = []
        self.release = threading.Event()

    def query_user_keys(self, destination: str, device_keys: Any) -> Any:
        self.asked.append((destination, device_keys))
        if destination == "slow.example":
            self.release.wait(5)
            return {}
        if destination != "remote.example":
            raise ConnectionError("unreachable")
        forged = ClientDevice("@dave:other.example", "DAVE").device_keys()
        return {
            "device_keys": {
                "@carol:remote.example": {
                    "CAROLPHONE": self.carol.device_keys(),
                    "LIAR": self.carol.device_keys(),  # its device_id says CAROLPHONE
                },
                "@dave:other.example": {"DAVE": forged},  # not remote.example's user
            },
            "master_keys": {
                "@carol:remote.example": {
                    "user_id": "@carol:remote.example",
                    "usage": ["master"],
                    "keys": {"ed25519:abc": "abc"},
                }
            },
        }

    def claim_user_keys(self, destination: str, one_time_keys: Any) -> Any:
        self.asked.append((destination, one_time_keys))
        if destination != "remote.example":
            raise ConnectionError("unreachable")
        key = self.carol.one_time_keys(1)
        return {"one_time_keys": {"@carol:remote.example": {"CAROLPHONE": key, "OTHER": key}}}


@override_settings(MATRIXHS_FEDERATION_ENABLED=True)
class KeysAcrossServersTests(E2eeTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.server = RemoteServer("remote.example")
        self.enterContext(known_servers(self.server))
        self.remote = RemoteKeyServer()
        self.enterContext(mock.patch("federation.peers.remote", return_value=self.remote))

    def fed(self, method: str, uri: str, body: Any = None) -> Any:
        return federation_request(self.client, self.server, method, f"{FED}{uri}", body)

    # --- theirs asking about ours ----------------------------------------------------------

    def test_their_key_query_gets_our_users_keys(self) -> None:
        device = self.upload_device_keys(self.alice)
        signing = self.set_up_cross_signing(self.alice)
        got = self.fed(
            "POST",
            "/user/keys/query",
            {
                "device_keys": {
                    self.alice.user_id: [],
                    self.bob.user_id: [],
                    "@carol:remote.example": [],
                }
            },
        )
        self.assertEqual(got.status_code, 200, got.body)
        self.assertEqual(
            got.body["device_keys"][self.alice.user_id][device.device_id]["keys"],
            device.device_keys()["keys"],
        )
        self.assertEqual(got.body["device_keys"][self.bob.user_id], {})
        self.assertNotIn("@carol:remote.example", got.body["device_keys"])
        self.assertEqual(
            got.body["master_keys"][self.alice.user_id]["keys"],
            signing.master()["keys"],
        )
        self.assertNotIn("user_signing_keys", got.body)
        bad = self.fed("POST", "/user/keys/query", {"device_keys": {"@a:b": "x"}})
        self.assert_matrix_error(bad, 400, "M_BAD_JSON")

    def test_their_claim_takes_one_of_our_one_time_keys(self) -> None:
        device = self.upload_device_keys(self.alice, one_time_keys=1)
        claim = {"one_time_keys": {self.alice.user_id: {device.device_id: "signed_curve25519"}}}
        first = self.fed("POST", "/user/keys/claim", claim)
        self.assertEqual(first.status_code, 200, first.body)
        self.assertEqual(len(first.body["one_time_keys"][self.alice.user_id][device.device_id]), 1)
        second = self.fed("POST", "/user/keys/claim", claim)
        self.assertEqual(second.body, {"one_time_keys": {}})

    def test_their_device_list_request(self) -> None:
        device = self.upload_device_keys(self.alice)
        self.set_up_cross_signing(self.alice)
        got = self.fed("GET", f"/user/devices/{self.alice.user_id}")
        self.assertEqual(got.status_code, 200, got.body)
        self.assertEqual(got.body["user_id"], self.alice.user_id)
        self.assertEqual([d["device_id"] for d in got.body["devices"]], [device.device_id])
        self.assertGreater(got.body["stream_id"], 0)
        self.assertIn("master_key", got.body)
        self.assertIn("self_signing_key", got.body)
        missing = self.fed("GET", "/user/devices/@nobody:test.local")
        self.assertEqual(missing.status_code, 404, missing.body)

    # --- ours asking about theirs ----------------------------------------------------------

    def test_our_key_query_asks_their_servers(self) -> None:
        body = self.query(
            self.alice,
            {"@carol:remote.example": [], "@erin:down.example": []},
        )
        carol = body["device_keys"]["@carol:remote.example"]
        self.assertEqual(list(carol), ["CAROLPHONE"])
        self.assertNotIn("@dave:other.example", body["device_keys"])
        self.assertEqual(
            body["master_keys"]["@carol:remote.example"]["keys"], {"ed25519:abc": "abc"}
        )
        self.assertEqual(list(body["failures"]), ["down.example"])
        self.assertIn(
            ("remote.example", {"@carol:remote.example": []}),
            self.remote.asked,
        )

    def test_a_slow_server_is_a_failure_after_the_timeout(self) -> None:
        try:
            response = self.api(self.alice).post(
                "/_matrix/client/v3/keys/query",
                {"device_keys": {"@frank:slow.example": []}, "timeout": 100},
            )
        finally:
            self.remote.release.set()
        self.assertEqual(response.status_code, 200, response.body)
        self.assertEqual(response.body["failures"]["slow.example"]["status"], 504)

    def test_our_claim_asks_their_servers(self) -> None:
        response = self.api(self.alice).post(
            CLAIM,
            {
                "one_time_keys": {
                    "@carol:remote.example": {"CAROLPHONE": "signed_curve25519"},
                    "@erin:down.example": {"X": "signed_curve25519"},
                }
            },
        )
        self.assertEqual(response.status_code, 200, response.body)
        keys = response.body["one_time_keys"]["@carol:remote.example"]
        self.assertEqual(list(keys), ["CAROLPHONE"])
        self.assertEqual(list(response.body["failures"]), ["down.example"])

    @override_settings(MATRIXHS_FEDERATION_ENABLED=False)
    def test_without_federation_their_servers_are_failures(self) -> None:
        body = self.query(self.alice, {"@carol:remote.example": []})
        self.assertEqual(list(body["failures"]), ["remote.example"])
        self.assertEqual(self.remote.asked, [])


@override_settings(MATRIXHS_FEDERATION_ENABLED=True)
class DeviceListsAcrossServersTests(E2eeTestCase):
    """alice shares a room with carol of remote.example."""

    def setUp(self) -> None:
        super().setUp()
        self.server = RemoteServer("remote.example")
        self.carol = self.server.user("carol")
        self.enterContext(known_servers(self.server))
        self.enterContext(mock.patch("federation.peers.remote", return_value=RemoteKeyServer()))
        created = self.api(self.alice).post(
            "/_matrix/client/v3/createRoom", {"preset": "public_chat", "room_version": "11"}
        )
        self.room_id = created.body["room_id"]
        join_id, join = self.server.event(
            self.room_id,
            EventTypes.MEMBER,
            self.carol,
            {"membership": "join"},
            state_key=self.carol,
        )
        self.assertTrue(persist_federated_event(self.room_id, join_id, join).accepted)

    def edus(self, edu_type: str) -> list[dict[str, Any]]:
        rows = OutboundEdu.objects.filter(destination="remote.example", edu_type=edu_type)
        return [row.content for row in rows.order_by("id")]

    def test_our_device_changes_are_sent_to_their_servers(self) -> None:
        device = self.upload_device_keys(self.alice)
        renamed = self.api(self.alice).put(
            f"/_matrix/client/v3/devices/{device.device_id}", {"display_name": "Laptop"}
        )
        self.assertEqual(renamed.status_code, 200, renamed.body)
        first, second = self.edus("m.device_list_update")
        self.assertEqual(first["user_id"], self.alice.user_id)
        self.assertEqual(first["device_id"], device.device_id)
        self.assertEqual(first["prev_id"], [])
        self.assertEqual(first["keys"]["keys"], device.device_keys()["keys"])
        self.assertEqual(second["prev_id"], [first["stream_id"]])
        self.assertEqual(second["device_display_name"], "Laptop")
        # Other servers ask for the list at that position.
        listed = federation_request(
            self.client, self.server, "GET", f"{FED}/user/devices/{self.alice.user_id}"
        )
        self.assertEqual(listed.body["stream_id"], second["stream_id"])

        self.set_up_cross_signing(self.alice)
        [signing] = self.edus("m.signing_key_update")
        self.assertEqual(signing["user_id"], self.alice.user_id)
        self.assertIn("master_key", signing)
        self.assertIn("self_signing_key", signing)

        deleted = self.api(self.alice).post(
            "/_matrix/client/v3/delete_devices", {"devices": [device.device_id]}
        )
        if deleted.status_code == 401:  # interactive auth: the password stage
            auth = {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": self.alice.user_id},
                "password": self.password,
                "session": deleted.body["session"],
            }
            deleted = self.api(self.alice).post(
                "/_matrix/client/v3/delete_devices", {"devices": [device.device_id], "auth": auth}
            )
        self.assertEqual(deleted.status_code, 200, deleted.body)
        last = self.edus("m.device_list_update")[-1]
        self.assertEqual((last["device_id"], last.get("deleted")), (device.device_id, True))
        self.assertNotIn("keys", last)

    def test_their_device_changes_reach_our_users(self) -> None:
        before = self.sync(self.alice)
        update = {
            "user_id": self.carol,
            "device_id": "CAROLPHONE",
            "stream_id": 7,
            "prev_id": [],
            "deleted": True,
        }
        for server in (RemoteServer("stranger.example"), self.server):
            with known_servers(self.server, server):
                body = {
                    "origin": server.name,
                    "origin_server_ts": 1,
                    "pdus": [],
                    "edus": [{"edu_type": "m.device_list_update", "content": update}],
                }
                sent = federation_request(
                    self.client, server, "PUT", f"{FED}/send/dl-{server.name}", body
                )
                self.assertEqual(sent.status_code, 200, sent.body)
                now = self.sync(self.alice)["next_batch"]
                changes = self.api(self.alice).get(
                    f"/_matrix/client/v3/keys/changes?from={before['next_batch']}&to={now}"
                )
                # The stranger cannot speak for carol; her own server can.
                expected = [self.carol] if server is self.server else []
                self.assertEqual(changes.body["changed"], expected)
        later = self.sync(self.alice, since=before["next_batch"])
        self.assertIn(self.carol, later["device_lists"]["changed"])


class RemoteDevicesServer(RemoteKeyServer):
    """remote.example answering GET /user/devices for carol, counting the requests."""

    def __init__(self) -> None:
        super().__init__()
        self.stream_id = 5
        self.fetches = 0

    def user_devices(self, destination: str, user_id: str) -> Any:
        self.fetches += 1
        return {
            "user_id": user_id,
            "stream_id": self.stream_id,
            "devices": [
                {
                    "device_id": "CAROLPHONE",
                    "keys": self.carol.device_keys(),
                    "device_display_name": "Phone",
                }
            ],
            "master_key": {"user_id": user_id, "usage": ["master"], "keys": {"ed25519:m1": "m1"}},
        }


@override_settings(MATRIXHS_FEDERATION_ENABLED=True)
class RemoteDeviceListCacheTests(E2eeTestCase):
    """alice shares a room with carol of remote.example, whose device list is kept."""

    def setUp(self) -> None:
        super().setUp()
        self.server = RemoteServer("remote.example")
        self.carol = self.server.user("carol")
        self.enterContext(known_servers(self.server))
        self.remote = RemoteDevicesServer()
        self.enterContext(mock.patch("federation.peers.remote", return_value=self.remote))
        created = self.api(self.alice).post(
            "/_matrix/client/v3/createRoom", {"preset": "public_chat", "room_version": "11"}
        )
        self.room_id = created.body["room_id"]
        self.carol_membership("join")
        self.txn = 0

    def carol_membership(self, membership: str) -> None:
        event_id, pdu = self.server.event(
            self.room_id,
            EventTypes.MEMBER,
            self.carol,
            {"membership": membership},
            state_key=self.carol,
        )
        self.assertTrue(persist_federated_event(self.room_id, event_id, pdu).accepted)

    def edu(self, edu_type: str, content: dict[str, Any]) -> None:
        self.txn += 1
        body = {
            "origin": "remote.example",
            "origin_server_ts": 1,
            "pdus": [],
            "edus": [{"edu_type": edu_type, "content": {"user_id": self.carol, **content}}],
        }
        sent = federation_request(
            self.client, self.server, "PUT", f"{FED}/send/cache-{self.txn}", body
        )
        self.assertEqual(sent.status_code, 200, sent.body)

    def carol_devices(self) -> dict[str, Any]:
        return self.query(self.alice, {self.carol: []})["device_keys"][self.carol]

    def test_the_list_is_fetched_once_then_kept(self) -> None:
        first = self.query(self.alice, {self.carol: []})
        self.assertEqual(list(first["device_keys"][self.carol]), ["CAROLPHONE"])
        phone = first["device_keys"][self.carol]["CAROLPHONE"]
        self.assertEqual(phone["unsigned"]["device_display_name"], "Phone")
        self.assertEqual(first["master_keys"][self.carol]["keys"], {"ed25519:m1": "m1"})
        second = self.query(self.alice, {self.carol: ["CAROLPHONE"]})
        self.assertEqual(second["device_keys"], first["device_keys"])
        self.assertEqual(self.remote.fetches, 1)
        self.assertEqual(self.remote.asked, [])  # never the batch /user/keys/query

    def test_updates_that_follow_on_are_applied_without_asking(self) -> None:
        self.carol_devices()
        laptop = ClientDevice(self.carol, "CAROLLAPTOP")
        self.edu(
            "m.device_list_update",
            {
                "device_id": "CAROLLAPTOP",
                "stream_id": 6,
                "prev_id": [5],
                "keys": laptop.device_keys(),
                "device_display_name": "Laptop",
            },
        )
        self.assertEqual(sorted(self.carol_devices()), ["CAROLLAPTOP", "CAROLPHONE"])
        self.edu(
            "m.device_list_update",
            {"device_id": "CAROLPHONE", "stream_id": 7, "prev_id": [6], "deleted": True},
        )
        self.assertEqual(list(self.carol_devices()), ["CAROLLAPTOP"])
        self.edu(
            "m.signing_key_update",
            {
                "master_key": {
                    "user_id": self.carol,
                    "usage": ["master"],
                    "keys": {"ed25519:m2": "m2"},
                }
            },
        )
        body = self.query(self.alice, {self.carol: []})
        self.assertEqual(body["master_keys"][self.carol]["keys"], {"ed25519:m2": "m2"})
        self.assertEqual(self.remote.fetches, 1)

    def test_a_gap_makes_the_list_fetched_again(self) -> None:
        self.carol_devices()
        self.edu(
            "m.device_list_update",
            {
                "device_id": "CAROLTABLET",
                "stream_id": 9,
                "prev_id": [8],
                "keys": ClientDevice(self.carol, "CAROLTABLET").device_keys(),
            },
        )
        self.remote.stream_id = 9
        self.assertEqual(list(self.carol_devices()), ["CAROLPHONE"])  # as her server says
        self.assertEqual(self.remote.fetches, 2)
        self.carol_devices()
        self.assertEqual(self.remote.fetches, 2)

    def test_a_list_is_not_trusted_across_a_break_in_sharing(self) -> None:
        self.carol_devices()
        self.carol_membership("leave")
        self.query(self.alice, {self.carol: []})
        self.assertEqual(self.remote.fetches, 1)  # no room shared: asked, not kept
        self.assertEqual(len(self.remote.asked), 1)
        self.carol_membership("join")  # updates sent while apart never reached us
        self.carol_devices()
        self.assertEqual(self.remote.fetches, 2)
