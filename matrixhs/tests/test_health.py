"""GET /health: 200 "OK" while the database answers, 503 when it does not."""

from __future__ import annotations

from unittest import mock

from django.db import OperationalError
from django.test import TestCase


class HealthTests(TestCase):
    def test_database_reachable_answers_ok(self) -> None:
        response = self.client.get("/health")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.content, b"OK")

    def test_database_unreachable_answers_503(self) -> None:
        failing = mock.MagicMock()
        failing.__enter__.return_value.execute.side_effect = OperationalError("down")
        with mock.patch("matrixhs.views.connection.cursor", return_value=failing):
            response = self.client.get("/health")
        self.assertEqual(response.status_code, 503)
        self.assertNotEqual(response.content, b"OK")
