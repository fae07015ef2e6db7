"""Every admin API endpoint refuses anyone but a server admin, before any lookup."""

from __future__ import annotations

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from serveradmin import urls
from serveradmin.models import AuditLogEntry
from serveradmin.tests.base import AdminTestCase

PREFIXES = [
    ("/_synapse/admin/v1/", urls.synapse_admin_v1_patterns),
    ("/_synapse/admin/v2/", urls.synapse_admin_v2_patterns),
    ("/_matrix/client/v1/", urls.client_v1_patterns),
]
VALUES = {
    "user_id": "@nobody:test.local",
    "room_id": "!nowhere:test.local",
    "device_id": "DEVICE",
    "server_name": "test.local",
    "media_id": "abc",
    "report_id": "1",
    "token": "tok",
    "delete_id": "del",
    "destination": "remote.example",
}


def admin_paths() -> list[tuple[str, list[str]]]:
    out = []
    for prefix, patterns in PREFIXES:
        for pattern in patterns:
            route = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: VALUES[m.group(1)], str(pattern.pattern))
            view = pattern.callback.view_class
            methods = [m.upper() for m in ("get", "put", "post", "delete") if hasattr(view, m)]
            out.append((prefix + route, methods))
    return out


class AccessTests(AdminTestCase):
    def test_every_endpoint_refuses_non_admins(self) -> None:
        paths = admin_paths()
        self.assertGreater(len(paths), 30)
        for path, methods in paths:
            if path.endswith(("server_version", "/register")):
                continue  # open to all, as in Synapse
            for method in methods:
                response = self.api(self.bob).request(method, path, {})
                self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertFalse(AuditLogEntry.objects.exists())

    def test_every_endpoint_answers_admins_without_a_server_error(self) -> None:
        for path, methods in admin_paths():
            for method in methods:
                response = self.api(self.alice).request(method, path, {})
                self.assertLess(response.status_code, 500, (method, path, response.body))

    def test_user_listing_costs_a_fixed_number_of_queries(self) -> None:
        api = self.api(self.alice)
        api.get("/_synapse/admin/v2/users")  # the token's first use writes; later ones read
        with CaptureQueriesContext(connection) as few:
            api.get("/_synapse/admin/v2/users")
        for i in range(5):
            self.make_user(f"extra{i}")
        with CaptureQueriesContext(connection) as many:
            self.assertEqual(api.get("/_synapse/admin/v2/users").body["total"], 8)
        self.assertEqual(len(many), len(few))

    def test_extreme_paging_values_are_answered(self) -> None:
        api = self.api(self.alice)
        listings = [
            "/_synapse/admin/v2/users",
            "/_synapse/admin/v1/rooms",
            "/_synapse/admin/v1/event_reports",
            "/_synapse/admin/v1/federation/destinations",
            "/_synapse/admin/v1/users/@bob:test.local/media",
        ]
        for path in listings:
            for query in ("from=999999999999999999&limit=999999999999999999", "limit=1"):
                response = api.get(f"{path}?{query}")
                self.assertEqual(response.status_code, 200, (path, query, response.body))
            for query in ("from=1e3", "limit=%C2%B2", "dir=%00", "from=9999999999999999999"):
                response = api.get(f"{path}?{query}")
                self.assert_matrix_error(response, 400, "M_INVALID_PARAM")
