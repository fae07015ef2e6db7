"""GET /profile/{userId} of another server's user: asked of that server (/query/profile)."""

from __future__ import annotations

from typing import Any
from unittest import mock

from django.test import override_settings

from matrixhs.errors import MatrixError, NotFound
from matrixhs.testing import MatrixTestCase

PROFILE = "/_matrix/client/v3/profile"


class ProfileRemote:
    def __init__(self, answer: Any = None, error: Exception | None = None) -> None:
        self.answer, self.error = answer, error
        self.calls: list[tuple[str, str, str | None]] = []

    def query_profile(self, destination: str, user_id: str, field: str | None = None) -> Any:
        self.calls.append((destination, user_id, field))
        if self.error is not None:
            raise self.error
        return self.answer


class RemoteProfileTests(MatrixTestCase):
    def remote(self, **kwargs: Any) -> ProfileRemote:
        remote = ProfileRemote(**kwargs)
        self.enterContext(mock.patch("federation.peers.remote", return_value=remote))
        return remote

    def test_profile_is_asked_of_the_users_server(self) -> None:
        remote = self.remote(answer={"displayname": "Carol", "avatar_url": "mxc://r.example/a"})
        response = self.api(self.alice).get(f"{PROFILE}/@carol:r.example:8448")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.body, {"displayname": "Carol", "avatar_url": "mxc://r.example/a"})
        self.assertEqual(remote.calls, [("r.example:8448", "@carol:r.example:8448", None)])

    def test_one_field(self) -> None:
        remote = self.remote(answer={"displayname": "Carol"})
        response = self.api(self.alice).get(f"{PROFILE}/@carol:r.example/displayname")
        self.assertEqual(response.body, {"displayname": "Carol"})
        self.assertEqual(remote.calls[0][2], "displayname")

    def test_unknown_remote_user_is_not_found(self) -> None:
        self.remote(error=NotFound("nope"))
        response = self.api(self.alice).get(f"{PROFILE}/@nobody:r.example")
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")

    def test_unreachable_server_is_502(self) -> None:
        self.remote(error=MatrixError(502, "M_UNKNOWN", "down"))
        response = self.api(self.alice).get(f"{PROFILE}/@carol:r.example")
        self.assertEqual(response.status_code, 502)

    def test_non_string_displayname_is_dropped(self) -> None:
        self.remote(answer={"displayname": 5, "avatar_url": "mxc://r.example/a"})
        response = self.api(self.alice).get(f"{PROFILE}/@carol:r.example")
        self.assertEqual(response.body, {"avatar_url": "mxc://r.example/a"})

    @override_settings(MATRIXHS_FEDERATION_ENABLED=False)
    def test_without_federation_remote_profiles_are_not_found(self) -> None:
        remote = self.remote(answer={"displayname": "Carol"})
        response = self.api(self.alice).get(f"{PROFILE}/@carol:r.example")
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")
        self.assertEqual(remote.calls, [])
