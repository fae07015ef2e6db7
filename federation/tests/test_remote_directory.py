"""GET/POST /publicRooms?server=<another server>: asked of that server."""

from __future__ import annotations

from typing import Any
from unittest import mock

from matrixhs.errors import MatrixError
from matrixhs.testing import MatrixTestCase

V3 = "/_matrix/client/v3"
ROOMS = {
    "chunk": [
        {
            "room_id": "!a:r.example",
            "num_joined_members": 3,
            "world_readable": False,
            "guest_can_join": False,
        }
    ],
    "total_room_count_estimate": 1,
}


class DirectoryRemote:
    def __init__(self, answer: Any = None, error: Exception | None = None) -> None:
        self.answer, self.error = answer, error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def public_rooms(self, destination: str, **params: Any) -> Any:
        self.calls.append((destination, params))
        if self.error is not None:
            raise self.error
        return self.answer


class RemotePublicRoomsTests(MatrixTestCase):
    def remote(self, **kwargs: Any) -> DirectoryRemote:
        remote = DirectoryRemote(**kwargs)
        self.enterContext(mock.patch("federation.peers.remote", return_value=remote))
        return remote

    def test_get_asks_the_server(self) -> None:
        remote = self.remote(answer=ROOMS)
        response = self.api().get(f"{V3}/publicRooms?server=r.example&limit=5")
        self.assertEqual((response.status_code, response.body), (200, ROOMS))
        self.assertEqual(remote.calls, [("r.example", {"limit": 5})])

    def test_post_passes_the_filter(self) -> None:
        remote = self.remote(answer=ROOMS)
        body = {"limit": 2, "filter": {"generic_search_term": "x"}}
        response = self.api(self.alice).post(f"{V3}/publicRooms?server=r.example", body)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(remote.calls, [("r.example", body)])

    def test_refusal_is_passed_on_and_failures_are_502(self) -> None:
        self.remote(error=MatrixError(403, "M_FORBIDDEN", "not listed"))
        response = self.api().get(f"{V3}/publicRooms?server=r.example")
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.remote(answer={"rooms": []})
        response = self.api().get(f"{V3}/publicRooms?server=r.example")
        self.assertEqual(response.status_code, 502)

    def test_our_own_name_is_the_local_directory(self) -> None:
        remote = self.remote(answer=ROOMS)
        response = self.api().get(f"{V3}/publicRooms?server=test.local")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(remote.calls, [])
