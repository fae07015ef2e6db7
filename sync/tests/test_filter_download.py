"""GET /user/{userId}/filter/{filterId}."""

from __future__ import annotations

from matrixhs.testing import MatrixTestCase

URL = "/_matrix/client/v3/user/{}/filter"


class FilterDownloadTests(MatrixTestCase):
    def setUp(self) -> None:
        super().setUp()
        body = {"room": {"timeline": {"limit": 10}}}
        self.filter_id = (
            self.api(self.alice).post(URL.format(self.alice.user_id), body).body["filter_id"]
        )

    def test_own_filter(self) -> None:
        response = self.api(self.alice).get(f"{URL.format(self.alice.user_id)}/{self.filter_id}")
        self.assertEqual(response.body, {"room": {"timeline": {"limit": 10}}})

    def test_unknown_filter(self) -> None:
        for filter_id in ("99", "nope"):
            response = self.api(self.alice).get(f"{URL.format(self.alice.user_id)}/{filter_id}")
            self.assert_matrix_error(response, 404, "M_NOT_FOUND")

    def test_filter_ids_belong_to_their_user(self) -> None:
        response = self.api(self.bob).get(f"{URL.format(self.bob.user_id)}/{self.filter_id}")
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")

    def test_another_users_filter_is_forbidden(self) -> None:
        response = self.api(self.bob).get(f"{URL.format(self.alice.user_id)}/{self.filter_id}")
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
