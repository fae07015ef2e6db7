"""GET /thirdparty/protocol/{protocol}."""

from __future__ import annotations

from matrixhs.testing import MatrixTestCase


class ThirdPartyProtocolTests(MatrixTestCase):
    def test_every_protocol_is_unknown(self) -> None:
        response = self.api(self.alice).get("/_matrix/client/v3/thirdparty/protocol/irc")
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")
