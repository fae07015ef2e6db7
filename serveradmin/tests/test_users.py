from __future__ import annotations

from accounts.models import AccessToken, Device, User
from serveradmin.models import AuditLogEntry
from serveradmin.tests.base import V1, V2, AdminTestCase


class AccessTests(AdminTestCase):
    def test_non_admin_is_forbidden_before_any_lookup(self) -> None:
        for path in (f"{V2}/users", f"{V2}/users/@nobody:test.local", f"{V1}/whois/@x:test.local"):
            self.assert_matrix_error(self.api(self.bob).get(path), 403, "M_FORBIDDEN")

    def test_no_token_is_401(self) -> None:
        self.assert_matrix_error(self.api().get(f"{V2}/users"), 401, "M_MISSING_TOKEN")

    def test_server_version_needs_no_token(self) -> None:
        response = self.api().get(f"{V1}/server_version")
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.body["server_version"].startswith("matrixhs "))


class ListUsersTests(AdminTestCase):
    def test_pages_with_next_token_and_total(self) -> None:
        for i in range(5):
            self.make_user(f"user{i}")
        first = self.api(self.alice).get(f"{V2}/users?limit=3")
        self.assertEqual(first.status_code, 200, first.body)
        self.assertEqual(first.body["total"], 8)
        self.assertEqual(len(first.body["users"]), 3)
        self.assertEqual(first.body["next_token"], "3")
        rest = self.api(self.alice).get(f"{V2}/users?limit=10&from=3")
        self.assertNotIn("next_token", rest.body)
        names = [u["name"] for u in first.body["users"] + rest.body["users"]]
        self.assertEqual(names, sorted(names))
        self.assertEqual(len(set(names)), 8)

    def test_filters(self) -> None:
        from accounts.actions.users import do_deactivate_user

        do_deactivate_user(self.mallory)
        api = self.api(self.alice)
        names = {u["name"] for u in api.get(f"{V2}/users").body["users"]}
        self.assertNotIn(self.mallory.user_id, names)
        names = {u["name"] for u in api.get(f"{V2}/users?deactivated=true").body["users"]}
        self.assertIn(self.mallory.user_id, names)
        admins = api.get(f"{V2}/users?admins=true").body
        self.assertEqual([u["name"] for u in admins["users"]], [self.alice.user_id])
        self.assertEqual(api.get(f"{V2}/users?user_id=bo").body["total"], 1)
        from accounts.actions.users import do_set_locked

        do_set_locked(self.bob, True)  # as in Synapse, locked users are listed on request
        names = {u["name"] for u in api.get(f"{V2}/users").body["users"]}
        self.assertNotIn(self.bob.user_id, names)
        names = {u["name"] for u in api.get(f"{V2}/users?locked=true").body["users"]}
        self.assertIn(self.bob.user_id, names)
        self.assertEqual(
            api.get(f"{V2}/users?name=ALI").body["users"][0]["name"], "@alice:test.local"
        )

    def test_order_and_direction(self) -> None:
        api = self.api(self.alice)
        names = [u["name"] for u in api.get(f"{V2}/users?order_by=name&dir=b").body["users"]]
        self.assertEqual(names, sorted(names, reverse=True))
        admins_first = api.get(f"{V2}/users?order_by=admin&dir=b").body["users"]
        self.assertTrue(admins_first[0]["admin"])

    def test_bad_params_are_400(self) -> None:
        api = self.api(self.alice)
        for query in ("limit=0", "from=-1", "from=x", "dir=up", "order_by=nope", "guests=maybe"):
            self.assert_matrix_error(api.get(f"{V2}/users?{query}"), 400, "M_INVALID_PARAM")


class UserTests(AdminTestCase):
    def test_get_user(self) -> None:
        body = self.api(self.alice).get(f"{V2}/users/@bob:test.local").body
        self.assertEqual(body["name"], "@bob:test.local")
        self.assertEqual(
            (body["admin"], body["deactivated"], body["locked"]), (False, False, False)
        )
        self.assertEqual(body["threepids"], [])

    def test_unknown_user_is_404_and_remote_400(self) -> None:
        api = self.api(self.alice)
        self.assert_matrix_error(api.get(f"{V2}/users/@nobody:test.local"), 404, "M_NOT_FOUND")
        self.assert_matrix_error(api.get(f"{V2}/users/@bob:elsewhere"), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(api.get(f"{V2}/users/bob"), 400, "M_INVALID_PARAM")

    def test_put_creates_with_201_then_modifies_with_200(self) -> None:
        api = self.api(self.alice)
        created = api.put(
            f"{V2}/users/@carol:test.local",
            {"password": "pw-carol-1", "displayname": "Carol", "admin": True},
        )
        self.assertEqual(created.status_code, 201, created.body)
        self.assertEqual((created.body["displayname"], created.body["admin"]), ("Carol", True))
        login = self.api().post(
            "/_matrix/client/v3/login",
            {"type": "m.login.password", "user": "carol", "password": "pw-carol-1"},
        )
        self.assertEqual(login.status_code, 200, login.body)
        self.assert_audited("user.create", "@carol:test.local")
        changed = api.put(
            f"{V2}/users/@carol:test.local",
            {"displayname": "Caroline", "avatar_url": "mxc://test.local/abc", "admin": False},
        )
        self.assertEqual(changed.status_code, 200, changed.body)
        self.assertEqual(changed.body["displayname"], "Caroline")
        self.assertEqual(changed.body["avatar_url"], "mxc://test.local/abc")
        self.assertFalse(changed.body["admin"])
        entry = self.assert_audited("user.modify", "@carol:test.local")
        self.assertEqual(set(entry.details["changed"]), {"displayname", "avatar_url", "admin"})

    def test_put_password_logs_out_unless_told_not_to(self) -> None:
        api = self.api(self.alice)
        api.put(f"{V2}/users/@bob:test.local", {"password": "new-1", "logout_devices": False})
        self.assertTrue(AccessToken.objects.filter(user=self.bob).exists())
        api.put(f"{V2}/users/@bob:test.local", {"password": "new-2"})
        self.assertFalse(AccessToken.objects.filter(user=self.bob).exists())

    def test_put_deactivates_and_reactivates(self) -> None:
        api = self.api(self.alice)
        response = api.put(f"{V2}/users/@bob:test.local", {"deactivated": True})
        self.assertTrue(response.body["deactivated"])
        self.assertFalse(Device.objects.filter(user=self.bob).exists())
        response = api.put(
            f"{V2}/users/@bob:test.local", {"deactivated": False, "password": "back-again"}
        )
        self.assertFalse(response.body["deactivated"])
        login = self.api().post(
            "/_matrix/client/v3/login",
            {"type": "m.login.password", "user": "bob", "password": "back-again"},
        )
        self.assertEqual(login.status_code, 200, login.body)

    def test_put_bad_bodies_are_400(self) -> None:
        api = self.api(self.alice)
        path = f"{V2}/users/@bob:test.local"
        self.assert_matrix_error(api.put(path, {"admin": "yes"}), 400, "M_BAD_JSON")
        self.assert_matrix_error(api.put(path, {"avatar_url": "http://x"}), 400, "M_INVALID_PARAM")
        threepids = {"threepids": [{"medium": "email", "address": "a@b"}]}
        self.assert_matrix_error(api.put(path, threepids), 400, "M_INVALID_PARAM")
        upper = api.put(f"{V2}/users/@Carol:test.local", {"password": "p"})
        self.assert_matrix_error(upper, 400, "M_INVALID_USERNAME")
        bad_name = api.put(f"{V2}/users/@_x:test.local", {"password": "p"})
        self.assert_matrix_error(bad_name, 400, "M_INVALID_USERNAME")
        self.assert_matrix_error(api.request("PUT", path, raw=b"{"), 400, "M_NOT_JSON")
        self.assertFalse(User.objects.filter(localpart="_x").exists())

    def test_admin_cannot_demote_themselves(self) -> None:
        response = self.api(self.alice).put(f"{V2}/users/@alice:test.local", {"admin": False})
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")


class DeactivateAndPasswordTests(AdminTestCase):
    def test_deactivate_with_erase(self) -> None:
        response = self.api(self.alice).post(f"{V1}/deactivate/@bob:test.local", {"erase": True})
        self.assertEqual(response.status_code, 200, response.body)
        bob = User.objects.get(pk=self.bob.pk)
        self.assertFalse(bob.is_active)
        self.assertTrue(bob.erased)
        self.assertIsNone(bob.displayname)
        self.assertEqual(
            self.assert_audited("user.deactivate", bob.user_id).details, {"erase": True}
        )

    def test_deactivate_unknown_is_404_and_empty_body_allowed(self) -> None:
        api = self.api(self.alice)
        self.assert_matrix_error(api.post(f"{V1}/deactivate/@x:test.local", {}), 404, "M_NOT_FOUND")
        response = api.request("POST", f"{V1}/deactivate/@bob:test.local", raw=b"")
        self.assertEqual(response.status_code, 200, response.body)

    def test_reset_password(self) -> None:
        api = self.api(self.alice)
        response = api.post(f"{V1}/reset_password/@bob:test.local", {"new_password": "fresh-pw"})
        self.assertEqual(response.status_code, 200, response.body)
        self.assertFalse(AccessToken.objects.filter(user=self.bob).exists())
        self.assert_audited("user.reset_password", self.bob.user_id)
        missing = api.post(f"{V1}/reset_password/@bob:test.local", {})
        self.assert_matrix_error(missing, 400, "M_MISSING_PARAM")
        unknown = api.post(f"{V1}/reset_password/@x:test.local", {"new_password": "a"})
        self.assert_matrix_error(unknown, 404, "M_NOT_FOUND")
        self.assert_matrix_error(
            self.api(self.mallory).post(
                f"{V1}/reset_password/@bob:test.local", {"new_password": "a"}
            ),
            403,
            "M_FORBIDDEN",
        )

    def test_admin_flag(self) -> None:
        api = self.api(self.alice)
        self.assertEqual(api.get(f"{V1}/users/@bob:test.local/admin").body, {"admin": False})
        self.assertEqual(
            api.put(f"{V1}/users/@bob:test.local/admin", {"admin": True}).status_code, 200
        )
        self.assertEqual(api.get(f"{V1}/users/@bob:test.local/admin").body, {"admin": True})
        self.assert_audited("user.set_admin", self.bob.user_id)
        self.assert_matrix_error(
            api.put(f"{V1}/users/@bob:test.local/admin", {}), 400, "M_MISSING_PARAM"
        )


class WhoisTests(AdminTestCase):
    def test_synapse_whois(self) -> None:
        self.api(self.bob).get("/_matrix/client/v3/account/whoami")  # records last seen
        body = self.api(self.alice).get(f"{V1}/whois/@bob:test.local").body
        self.assertEqual(body["user_id"], "@bob:test.local")
        connections = body["devices"][""]["sessions"][0]["connections"]
        self.assertIsInstance(connections[0]["last_seen"], int)
        self.assertEqual(set(connections[0]), {"ip", "last_seen", "user_agent"})

    def test_client_whois_conforms_to_the_spec(self) -> None:
        self.api(self.bob).get("/_matrix/client/v3/account/whoami")
        body = self.api(self.alice).get("/_matrix/client/v3/admin/whois/@bob:test.local").body
        self.assertIn(self.bob.test_device_id, body["devices"])  # type: ignore[attr-defined]
        own = self.api(self.bob).get("/_matrix/client/v3/admin/whois/@bob:test.local")
        self.assertEqual(own.status_code, 200)
        other = self.api(self.bob).get("/_matrix/client/v3/admin/whois/@mallory:test.local")
        self.assert_matrix_error(other, 403, "M_FORBIDDEN")
        unknown = self.api(self.alice).get("/_matrix/client/v3/admin/whois/@nobody:test.local")
        self.assert_matrix_error(unknown, 404, "M_NOT_FOUND")


class DeviceTests(AdminTestCase):
    def test_list_get_rename_delete(self) -> None:
        api = self.api(self.alice)
        device_id = self.bob.test_device_id  # type: ignore[attr-defined]
        listed = api.get(f"{V2}/users/@bob:test.local/devices").body
        self.assertEqual(listed["total"], 1)
        self.assertEqual(listed["devices"][0]["user_id"], "@bob:test.local")
        path = f"{V2}/users/@bob:test.local/devices/{device_id}"
        self.assertEqual(api.put(path, {"display_name": "renamed"}).status_code, 200)
        self.assertEqual(api.get(path).body["display_name"], "renamed")
        self.assertEqual(api.delete(path).status_code, 200)
        self.assert_matrix_error(api.get(path), 404, "M_NOT_FOUND")
        self.assert_audited("device.delete", "@bob:test.local")
        self.assertFalse(AccessToken.objects.filter(user=self.bob).exists())

    def test_delete_devices(self) -> None:
        api = self.api(self.alice)
        device_id = self.bob.test_device_id  # type: ignore[attr-defined]
        response = api.post(f"{V2}/users/@bob:test.local/delete_devices", {"devices": [device_id]})
        self.assertEqual(response.status_code, 200, response.body)
        self.assertFalse(Device.objects.filter(user=self.bob).exists())
        bad = api.post(f"{V2}/users/@bob:test.local/delete_devices", {"devices": "x"})
        self.assert_matrix_error(bad, 400, "M_BAD_JSON")


class JoinedRoomsTests(AdminTestCase):
    def test_joined_rooms(self) -> None:
        room_id = self.api(self.bob).post("/_matrix/client/v3/createRoom", {}).body["room_id"]
        body = self.api(self.alice).get(f"{V1}/users/@bob:test.local/joined_rooms").body
        self.assertEqual(body, {"joined_rooms": [room_id], "total": 1})


class AuditLogTests(AdminTestCase):
    def test_reads_are_not_audited(self) -> None:
        self.api(self.alice).get(f"{V2}/users")
        self.assertFalse(AuditLogEntry.objects.exists())


class PushersTests(AdminTestCase):
    def test_pushers(self) -> None:
        pusher = {
            "pushkey": "key-1",
            "kind": "http",
            "app_id": "org.example.app",
            "app_display_name": "App",
            "device_display_name": "Phone",
            "lang": "en",
            "data": {"url": "https://push.example.org/_matrix/push/v1/notify"},
        }
        set_pusher = self.api(self.bob).post("/_matrix/client/v3/pushers/set", pusher)
        self.assertEqual(set_pusher.status_code, 200, set_pusher.body)
        body = self.api(self.alice).get(f"{V1}/users/@bob:test.local/pushers").body
        self.assertEqual(body["total"], 1)
        self.assertEqual(body["pushers"][0]["pushkey"], "key-1")
        self.assertEqual(body["pushers"][0]["user_name"], "@bob:test.local")
        missing = self.api(self.alice).get(f"{V1}/users/@x:test.local/pushers")
        self.assert_matrix_error(missing, 404, "M_NOT_FOUND")


class UsernameAvailableTests(AdminTestCase):
    def test_username_available(self) -> None:
        api = self.api(self.alice)
        path = f"{V1}/username_available"
        self.assertEqual(api.get(f"{path}?username=carol").body, {"available": True})
        self.assert_matrix_error(api.get(f"{path}?username=bob"), 400, "M_USER_IN_USE")
        self.assert_matrix_error(api.get(f"{path}?username=_x"), 400, "M_INVALID_USERNAME")
        self.assert_matrix_error(api.get(path), 400, "M_MISSING_PARAM")
