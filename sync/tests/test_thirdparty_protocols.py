"""GET /thirdparty/protocols."""

from __future__ import annotations

from matrixhs.testing import MatrixTestCase


class ThirdPartyProtocolsTests(MatrixTestCase):
    def test_no_protocols_without_application_services(self) -> None:
        response = self.api(self.alice).get("/_matrix/client/v3/thirdparty/protocols")
        self.assertEqual((response.status_code, response.body), (200, {}))

    def test_needs_a_token(self) -> None:
        response = self.api().get("/_matrix/client/v3/thirdparty/protocols")
        self.assert_matrix_error(response, 401, "M_MISSING_TOKEN")
