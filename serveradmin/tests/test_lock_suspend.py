from __future__ import annotations

from serveradmin.tests.base import V1, AdminTestCase

LOCK = "/_matrix/client/v1/admin/lock"
SUSPEND = "/_matrix/client/v1/admin/suspend"


class LockTests(AdminTestCase):
    def test_locked_user_gets_soft_logout_until_unlocked(self) -> None:
        api = self.api(self.alice)
        self.assertEqual(api.get(f"{LOCK}/@bob:test.local").body, {"locked": False})
        self.assertEqual(
            api.put(f"{LOCK}/@bob:test.local", {"locked": True}).body, {"locked": True}
        )
        self.assertEqual(api.get(f"{LOCK}/@bob:test.local").body, {"locked": True})
        whoami = self.api(self.bob).get("/_matrix/client/v3/account/whoami")
        self.assert_matrix_error(whoami, 401, "M_USER_LOCKED")
        self.assertIs(whoami.body["soft_logout"], True)
        self.assert_audited("user.lock", "@bob:test.local")
        api.put(f"{LOCK}/@bob:test.local", {"locked": False})
        self.assertEqual(
            self.api(self.bob).get("/_matrix/client/v3/account/whoami").status_code, 200
        )

    def test_locked_user_may_log_out(self) -> None:
        self.api(self.alice).put(f"{LOCK}/@bob:test.local", {"locked": True})
        self.assertEqual(self.api(self.bob).post("/_matrix/client/v3/logout").status_code, 200)
        whoami = self.api(self.bob).get("/_matrix/client/v3/account/whoami")
        self.assert_matrix_error(whoami, 401, "M_UNKNOWN_TOKEN")

    def test_refusals(self) -> None:
        api = self.api(self.alice)
        self.assert_matrix_error(
            api.put(f"{LOCK}/@alice:test.local", {"locked": True}), 403, "M_FORBIDDEN"
        )
        from accounts.actions.users import do_set_admin

        do_set_admin(self.bob, True)
        self.assert_matrix_error(
            api.put(f"{LOCK}/@bob:test.local", {"locked": True}), 403, "M_FORBIDDEN"
        )
        self.assert_matrix_error(api.get(f"{LOCK}/@x:elsewhere"), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(api.get(f"{LOCK}/@x:test.local"), 404, "M_NOT_FOUND")
        self.assert_matrix_error(api.put(f"{LOCK}/@mallory:test.local", {}), 400, "M_MISSING_PARAM")
        by_mallory = self.api(self.mallory).get(f"{LOCK}/@x:test.local")
        self.assert_matrix_error(by_mallory, 403, "M_FORBIDDEN")


class SuspendTests(AdminTestCase):
    def test_suspended_user_reads_but_cannot_write(self) -> None:
        room_id = self.api(self.bob).post("/_matrix/client/v3/createRoom", {}).body["room_id"]
        first_id = (
            self.api(self.bob)
            .put(f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/t0", {"body": "x"})
            .body["event_id"]
        )
        api = self.api(self.alice)
        self.assertEqual(
            api.put(f"{SUSPEND}/@bob:test.local", {"suspended": True}).status_code, 200
        )
        self.assertEqual(api.get(f"{SUSPEND}/@bob:test.local").body, {"suspended": True})
        bob = self.api(self.bob)
        self.assert_matrix_error(
            bob.post("/_matrix/client/v3/createRoom", {}), 403, "M_USER_SUSPENDED"
        )
        send = bob.put(f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/t1", {"body": "x"})
        self.assert_matrix_error(send, 403, "M_USER_SUSPENDED")
        invite = bob.post(
            f"/_matrix/client/v3/rooms/{room_id}/invite", {"user_id": "@mallory:test.local"}
        )
        self.assert_matrix_error(invite, 403, "M_USER_SUSPENDED")
        name = bob.put(
            "/_matrix/client/v3/profile/@bob:test.local/displayname", {"displayname": "b"}
        )
        self.assert_matrix_error(name, 403, "M_USER_SUSPENDED")
        self.assertEqual(bob.get("/_matrix/client/v3/joined_rooms").status_code, 200)
        redact = bob.put(
            f"/_matrix/client/v3/rooms/{room_id}/send/m.room.redaction/t2",
            {"redacts": first_id},
        )
        self.assertEqual(redact.status_code, 200, redact.body)
        self.assertEqual(bob.post(f"/_matrix/client/v3/rooms/{room_id}/leave", {}).status_code, 200)
        api.put(f"{SUSPEND}/@bob:test.local", {"suspended": False})
        self.assertEqual(bob.post("/_matrix/client/v3/createRoom", {}).status_code, 200)

    def test_synapse_suspend_endpoint(self) -> None:
        response = self.api(self.alice).put(f"{V1}/suspend/@bob:test.local", {"suspend": True})
        self.assertEqual(response.body, {"user_@bob:test.local_suspended": True})
        self.assert_audited("user.suspend", "@bob:test.local")
        self.assert_matrix_error(
            self.api(self.alice).put(f"{V1}/suspend/@bob:test.local", {"suspend": 1}),
            400,
            "M_BAD_JSON",
        )
        self.assert_matrix_error(
            self.api(self.alice).put(f"{SUSPEND}/@alice:test.local", {"suspended": True}),
            403,
            "M_FORBIDDEN",
        )


class CapabilityTests(AdminTestCase):
    def test_only_admins_see_account_moderation(self) -> None:
        caps = self.api(self.alice).get("/_matrix/client/v3/capabilities").body["capabilities"]
        self.assertEqual(caps["m.account_moderation"], {"suspend": True, "lock": True})
        caps = self.api(self.bob).get("/_matrix/client/v3/capabilities").body["capabilities"]
        self.assertNotIn("m.account_moderation", caps)


class LockedSyncTests(AdminTestCase):
    def test_sync_of_a_locked_user_is_refused(self) -> None:
        from matrixhs.errors import UserLocked
        from sync.consumers import LongPollRequest, SyncLongPollConsumer

        self.api(self.alice).put(f"{LOCK}/@bob:test.local", {"locked": True})
        scope = {
            "method": "GET",
            "query_string": b"",
            "headers": [(b"authorization", f"Bearer {self.bob.test_token}".encode())],  # type: ignore[attr-defined]
            "client": ("127.0.0.1", 1),
        }
        endpoint = SyncLongPollConsumer()
        with self.assertRaises(UserLocked):
            endpoint.prepare(LongPollRequest(scope, b""))
