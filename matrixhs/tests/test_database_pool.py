"""The PostgreSQL connection pool survives connections the server ended."""

from __future__ import annotations

import unittest

import psycopg
from django.db import connection
from django.test import TransactionTestCase

from matrixhs.testing import ApiClient

WHOAMI = "/_matrix/client/v3/account/whoami"


@unittest.skipUnless(connection.vendor == "postgresql", "the pool is PostgreSQL's")
class PoolCheckTests(TransactionTestCase):
    def terminate_server_connections(self) -> int:
        """What a server restart or an administrator does: end every session of the
        test database but this one."""
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        params.pop("prepare_threshold", None)
        with psycopg.connect(**params, autocommit=True) as admin:
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        return len(rows)

    def test_a_request_after_the_server_ended_the_connections_succeeds(self) -> None:
        from accounts.actions.devices import do_login_device
        from accounts.actions.tokens import issue_tokens
        from accounts.actions.users import do_register_user

        user = do_register_user("alice", "pw")
        token = issue_tokens(user, do_login_device(user, None, None), False)["access_token"]
        api = ApiClient(self.client, token)
        self.assertEqual(api.get(WHOAMI).status_code, 200)
        connection.close()  # back to the pool, as at the end of every request
        self.assertGreater(self.terminate_server_connections(), 0)
        for _ in range(3):  # every pooled connection was ended
            response = api.get(WHOAMI)
            self.assertEqual(response.status_code, 200, response.body)
