"""Queries our clients make about other servers, relayed over federation: profiles of
their users, their room directory."""

from __future__ import annotations

from typing import Any
from unittest import mock

from django.conf import settings
from django.test import override_settings

from matrixhs.errors import MatrixError
from rooms.tests.base import V3, RoomTestCase, q

BOB = "@bob:remote.example"


class Directory:
    """remote.example's answers, and the calls it got."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def query_profile(self, destination: str, user_id: str, field: str | None = None) -> Any:
        self.calls.append(("query_profile", (destination, user_id, field)))
        if user_id != BOB:
            raise MatrixError(404, "M_NOT_FOUND", "No such user")
        profile = {"displayname": "Bob", "avatar_url": "mxc://remote.example/bob"}
        return {field: profile[field]} if field else profile

    def public_rooms(self, destination: str, body: Any) -> Any:
        self.calls.append(("public_rooms", (destination, body)))
        return {
            "chunk": [
                {
                    "room_id": "!hall:remote.example",
                    "num_joined_members": 3,
                    "world_readable": False,
                    "guest_can_join": False,
                }
            ],
            "total_room_count_estimate": 1,
        }


class Unreachable:
    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("unreachable")

        return fail


@override_settings(MATRIXHS_FEDERATION_ENABLED=True)
class RemoteQueriesTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.remote = Directory()
        self.enterContext(mock.patch("federation.peers.remote", return_value=self.remote))

    def test_profile_of_a_remote_user(self) -> None:
        got = self.api(self.alice).get(f"{V3}/profile/{q(BOB)}")
        self.assertEqual(got.status_code, 200, got.body)
        self.assertEqual(got.body, {"displayname": "Bob", "avatar_url": "mxc://remote.example/bob"})
        field = self.api(self.alice).get(f"{V3}/profile/{q(BOB)}/displayname")
        self.assertEqual((field.status_code, field.body), (200, {"displayname": "Bob"}))
        self.assertEqual(
            self.remote.calls[-1], ("query_profile", ("remote.example", BOB, "displayname"))
        )
        unknown = self.api(self.alice).get(f"{V3}/profile/{q('@nobody:remote.example')}")
        self.assert_matrix_error(unknown, 404, "M_NOT_FOUND")

    def test_unreachable_server(self) -> None:
        with mock.patch("federation.peers.remote", return_value=Unreachable()):
            got = self.api(self.alice).get(f"{V3}/profile/{q(BOB)}")
            self.assert_matrix_error(got, 502, "M_UNKNOWN")
            rooms = self.api(self.alice).get(f"{V3}/publicRooms?server=remote.example")
            self.assert_matrix_error(rooms, 502, "M_UNKNOWN")

    @override_settings(MATRIXHS_FEDERATION_ENABLED=False)
    def test_without_federation(self) -> None:
        got = self.api(self.alice).get(f"{V3}/profile/{q(BOB)}")
        self.assert_matrix_error(got, 403, "M_FORBIDDEN")
        self.assertEqual(self.remote.calls, [])

    def test_public_rooms_of_another_server(self) -> None:
        got = self.api(self.alice).get(f"{V3}/publicRooms?server=remote.example&limit=5")
        self.assertEqual(got.status_code, 200, got.body)
        self.assertEqual([r["room_id"] for r in got.body["chunk"]], ["!hall:remote.example"])
        self.assertEqual(self.remote.calls[-1], ("public_rooms", ("remote.example", {"limit": 5})))
        search = {"filter": {"generic_search_term": "hall"}, "limit": 3}
        posted = self.api(self.alice).post(f"{V3}/publicRooms?server=remote.example", search)
        self.assertEqual(posted.status_code, 200, posted.body)
        self.assertEqual(self.remote.calls[-1], ("public_rooms", ("remote.example", search)))
        # Ours stays ours; other servers' directories need a signed-in user.
        ours = self.api().get(f"{V3}/publicRooms?server={settings.MATRIXHS_SERVER_NAME}")
        self.assertEqual(ours.status_code, 200, ours.body)
        anonymous = self.api().get(f"{V3}/publicRooms?server=remote.example")
        self.assert_matrix_error(anonymous, 401, "M_MISSING_TOKEN")
        bad = self.api(self.alice).get(f"{V3}/publicRooms?server=not%20a%20server")
        self.assert_matrix_error(bad, 400, "M_INVALID_PARAM")

    def test_a_server_answering_nonsense(self) -> None:
        with mock.patch.object(self.remote, "public_rooms", return_value={"rooms": 1}):
            got = self.api(self.alice).get(f"{V3}/publicRooms?server=remote.example")
        self.assert_matrix_error(got, 502, "M_UNKNOWN")
