"""/versions, /capabilities and .well-known."""

from __future__ import annotations

from django.test import override_settings

from matrixhs.protocol.room_versions import DEFAULT_ROOM_VERSION, KNOWN_ROOM_VERSIONS
from matrixhs.testing import MatrixTestCase


class VersionsTests(MatrixTestCase):
    def test_versions_without_auth(self) -> None:
        response = self.api().get("/_matrix/client/versions")
        self.assertEqual(response.status_code, 200)
        self.assertIn("v1.1", response.body["versions"])
        # Authenticated media (v1.11): clients such as Element switch to it by this list.
        self.assertIn("v1.11", response.body["versions"])
        self.assertNotIn("v1.12", response.body["versions"])


class CapabilitiesTests(MatrixTestCase):
    def test_capabilities(self) -> None:
        caps = self.api(self.alice).get("/_matrix/client/v3/capabilities").body["capabilities"]
        self.assertEqual(caps["m.room_versions"]["default"], DEFAULT_ROOM_VERSION)
        available = caps["m.room_versions"]["available"]
        self.assertEqual(set(available), set(KNOWN_ROOM_VERSIONS))
        self.assertEqual(available["12"], "stable")
        self.assertEqual(available["1"], "stable")
        self.assertEqual(caps["m.change_password"], {"enabled": True})

    def test_capabilities_need_auth(self) -> None:
        response = self.api().get("/_matrix/client/v3/capabilities")
        self.assert_matrix_error(response, 401, "M_MISSING_TOKEN")


class WellKnownTests(MatrixTestCase):
    @override_settings(MATRIXHS_PUBLIC_BASEURL="https://matrix.example.org")
    def test_client(self) -> None:
        response = self.api().get("/.well-known/matrix/client")
        self.assertEqual(
            response.body, {"m.homeserver": {"base_url": "https://matrix.example.org"}}
        )
        self.assertEqual(response.headers["Access-Control-Allow-Origin"], "*")

    @override_settings(
        MATRIXHS_FEDERATION_ENABLED=True, MATRIXHS_FEDERATION_ADDRESS="matrix.example.org:443"
    )
    def test_server(self) -> None:
        response = self.client.get("/.well-known/matrix/server")
        self.assertEqual(response.json(), {"m.server": "matrix.example.org:443"})

    @override_settings(
        MATRIXHS_FEDERATION_ENABLED=False, MATRIXHS_FEDERATION_ADDRESS="matrix.example.org:443"
    )
    def test_no_server_delegation_while_federation_is_off(self) -> None:
        response = self.client.get("/.well-known/matrix/server")
        self.assertEqual((response.status_code, response.json()["errcode"]), (404, "M_NOT_FOUND"))


class DefaultRoomVersionSettingTests(MatrixTestCase):
    @override_settings(MATRIXHS_DEFAULT_ROOM_VERSION="10")
    def test_capabilities_name_the_configured_default(self) -> None:
        caps = self.api(self.alice).get("/_matrix/client/v3/capabilities").body["capabilities"]
        self.assertEqual(caps["m.room_versions"]["default"], "10")


class WellKnownSupportTests(MatrixTestCase):
    def test_nothing_configured_is_not_found(self) -> None:
        response = self.api().get("/.well-known/matrix/support")
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")

    @override_settings(
        MATRIXHS_SUPPORT_MXID="@admin:example.org",
        MATRIXHS_SUPPORT_EMAIL="admin@example.org",
        MATRIXHS_SUPPORT_PAGE="https://example.org/help",
    )
    def test_contacts_and_page(self) -> None:
        response = self.api().get("/.well-known/matrix/support")
        self.assertEqual(
            response.body,
            {
                "contacts": [
                    {
                        "role": "m.role.admin",
                        "matrix_id": "@admin:example.org",
                        "email_address": "admin@example.org",
                    }
                ],
                "support_page": "https://example.org/help",
            },
        )

    @override_settings(MATRIXHS_SUPPORT_PAGE="https://example.org/help")
    def test_a_page_alone(self) -> None:
        response = self.api().get("/.well-known/matrix/support")
        self.assertEqual(response.body, {"support_page": "https://example.org/help"})
