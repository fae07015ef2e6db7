"""GET /_matrix/client/v1/media/config and /_matrix/media/v3/config."""

from __future__ import annotations

from django.test import override_settings

from matrixhs.testing import MatrixTestCase


class ConfigTest(MatrixTestCase):
    @override_settings(MATRIXHS_MAX_UPLOAD_BYTES=1234567)
    def test_config_serves_upload_size(self) -> None:
        for path in ("/_matrix/client/v1/media/config", "/_matrix/media/v3/config"):
            resp = self.api(self.alice).get(path)
            self.assertEqual((resp.status_code, resp.body), (200, {"m.upload.size": 1234567}))

    def test_config_needs_a_token(self) -> None:
        resp = self.api(None).get("/_matrix/client/v1/media/config")
        self.assert_matrix_error(resp, 401, "M_MISSING_TOKEN")
