"""The PostgreSQL connection pool survives connections the server ended."""

from __future__ import annotations

import time
import unittest
from typing import Any
from unittest import mock

import psycopg
from django.db import connection
from django.test import TransactionTestCase

from matrixhs.testing import ApiClient

WHOAMI = "/_matrix/client/v3/account/whoami"


@unittest.skipUnless(connection.vendor == "postgresql", "the pool is PostgreSQL's")
class PoolCheckTests(TransactionTestCase):
    def admin(self) -> psycopg.Connection[Any]:
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        params.pop("prepare_threshold", None)
        return psycopg.connect(**params, autocommit=True)

    def terminate_server_connections(self) -> int:
        """What a server restart or an administrator does: end every session of the
        test database but this one (and wait until they are gone, as they are by the time
        a restarted server accepts connections again)."""
        with self.admin() as admin:
            others = "datname = current_database() AND pid <> pg_backend_pid()"
            rows = admin.execute(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {others}"
            ).fetchall()
            for _ in range(100):
                left = admin.execute(f"SELECT count(*) FROM pg_stat_activity WHERE {others}")
                if left.fetchone() == (0,):
                    break
                time.sleep(0.02)
        return len(rows)

    def test_a_request_after_the_server_ended_the_connections_succeeds(self) -> None:
        """Connections just lent are lent again unchecked unless the server wrote to them
        (as it does when it ends a session): those are checked, and replaced."""
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

    def test_a_connection_lent_again_soon_is_checked_only_if_the_server_wrote_to_it(
        self,
    ) -> None:
        from psycopg_pool import ConnectionPool

        from matrixhs.postgresql_backend import base

        with (
            self.admin() as pooled,
            mock.patch.object(
                ConnectionPool, "check_connection", wraps=ConnectionPool.check_connection
            ) as check,
        ):
            self.assertTrue(base._usable(pooled))  # first lending: checked
            self.assertEqual(check.call_count, 1)
            self.assertTrue(base._usable(pooled))  # lent again at once: not checked
            self.assertEqual(check.call_count, 1)
            with mock.patch.object(base.time, "monotonic", return_value=1e12):
                self.assertTrue(base._usable(pooled))  # lent again long after: checked
            self.assertEqual(check.call_count, 2)
            pid = pooled.info.backend_pid
            with self.admin() as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            for _ in range(100):  # the server's goodbye reaches the socket
                if base._has_input(pooled):
                    break
                time.sleep(0.02)
            with mock.patch.object(base.time, "monotonic", return_value=1e12):
                self.assertFalse(base._usable(pooled))  # the server wrote: checked, broken
