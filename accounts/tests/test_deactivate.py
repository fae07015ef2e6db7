from __future__ import annotations

from accounts.models import AccessToken, Device, User
from matrixhs.testing import MatrixTestCase

DEACTIVATE = "/_matrix/client/v3/account/deactivate"


class DeactivateCase(MatrixTestCase):
    def deactivate(self, user: User, password: str, **extra: object) -> object:
        session = self.api(user).post(DEACTIVATE, {**extra}).body["session"]
        auth = {
            "type": "m.login.password",
            "session": session,
            "password": password,
            "identifier": {"type": "m.id.user", "user": user.user_id},
        }
        return self.api(user).post(DEACTIVATE, {"auth": auth, **extra})


class DeactivateTests(DeactivateCase):
    def test_deactivation_ends_everything(self) -> None:
        response = self.deactivate(self.alice, self.password)
        self.assertEqual(response.status_code, 200, response.body)
        self.assertEqual(response.body["id_server_unbind_result"], "no-support")
        alice = User.objects.get(pk=self.alice.pk)
        self.assertFalse(alice.is_active)
        self.assertFalse(Device.objects.filter(user=alice).exists())
        self.assertFalse(AccessToken.objects.filter(user=alice).exists())
        login = self.api().post(
            "/_matrix/client/v3/login",
            {"type": "m.login.password", "user": "alice", "password": self.password},
        )
        self.assert_matrix_error(login, 403, "M_FORBIDDEN")  # the password is gone too
        # The user ID is never handed out again.
        again = self.api().post(
            "/_matrix/client/v3/register",
            {"username": "alice", "password": "x", "auth": {"type": "m.login.dummy"}},
        )
        self.assert_matrix_error(again, 400, "M_USER_IN_USE")
        profile = self.api(self.bob).get("/_matrix/client/v3/profile/@alice:test.local")
        self.assert_matrix_error(profile, 404, "M_NOT_FOUND")

    def test_wrong_password_keeps_the_account(self) -> None:
        response = self.deactivate(self.alice, "wrong")
        self.assertEqual(response.status_code, 401)
        self.assertTrue(User.objects.get(pk=self.alice.pk).is_active)
        self.assertTrue(Device.objects.filter(user=self.alice).exists())

    def test_erase_clears_the_profile(self) -> None:
        self.deactivate(self.alice, self.password, erase=True)
        self.assertIsNone(User.objects.get(pk=self.alice.pk).displayname)

    def test_a_session_begun_without_erase_cannot_erase(self) -> None:
        first = self.api(self.alice).post(DEACTIVATE, {})
        self.assertEqual(first.status_code, 401)
        auth = {
            "type": "m.login.password",
            "session": first.body["session"],
            "password": self.password,
            "identifier": {"type": "m.id.user", "user": self.alice.user_id},
        }
        response = self.api(self.alice).post(DEACTIVATE, {"auth": auth, "erase": True})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertTrue(User.objects.get(pk=self.alice.pk).is_active)
        response = self.api(self.alice).post(DEACTIVATE, {"auth": auth, "erase": False})
        self.assertEqual(response.status_code, 200, response.body)


class DeactivatedAccountsLeaveRoomsTests(DeactivateCase):
    def room(self, creator: User, **body: object) -> str:
        got = self.api(creator).post("/_matrix/client/v3/createRoom", body)
        self.assertEqual(got.status_code, 200, got.body)
        return str(got.body["room_id"])

    def members(self, room_id: str) -> list[str]:
        got = self.api(self.alice).get(f"/_matrix/client/v3/rooms/{room_id}/joined_members")
        return sorted(got.body["joined"])

    def test_rooms_are_left_and_invites_rejected(self) -> None:
        joined = self.room(self.alice, preset="public_chat")
        self.assertEqual(
            self.api(self.bob).post(f"/_matrix/client/v3/join/{joined}", {}).status_code, 200
        )
        invited = self.room(self.alice, invite=[self.bob.user_id])
        with self.captureOnCommitCallbacks(execute=True):
            self.deactivate(self.bob, self.password)
        self.assertEqual(self.members(joined), [self.alice.user_id])
        state = self.api(self.alice).get(
            f"/_matrix/client/v3/rooms/{invited}/state/m.room.member/{self.bob.user_id}"
        )
        self.assertEqual(state.body["membership"], "leave")

    def test_a_deactivation_cut_short_is_finished_by_the_job(self) -> None:
        from accounts.actions.users import do_deactivate_user
        from rooms.actions.membership import leave_rooms_of_deactivated_users

        room = self.room(self.alice, preset="public_chat")
        self.api(self.bob).post(f"/_matrix/client/v3/join/{room}", {})
        with self.captureOnCommitCallbacks(execute=False):  # the process died here
            do_deactivate_user(User.objects.get(pk=self.bob.pk))
        self.assertEqual(self.members(room), sorted([self.alice.user_id, self.bob.user_id]))
        self.assertEqual(leave_rooms_of_deactivated_users(), 1)
        self.assertEqual(self.members(room), [self.alice.user_id])
        self.assertEqual(leave_rooms_of_deactivated_users(), 0)

    def test_a_crash_half_way_through_the_rooms_is_resumed(self) -> None:
        from unittest import mock

        from accounts.actions.users import do_deactivate_user
        from rooms.actions import membership
        from rooms.actions.membership import leave_rooms_of_deactivated_users

        rooms = [self.room(self.alice, preset="public_chat") for _ in range(3)]
        for room in rooms:
            self.api(self.bob).post(f"/_matrix/client/v3/join/{room}", {})
        real_leave = membership.do_leave
        left: list[str] = []

        def leave_then_die(user_id: str, room_id: str, **kw: object) -> object:
            if left:
                raise RuntimeError("process killed")
            left.append(room_id)
            return real_leave(user_id, room_id, **kw)  # type: ignore[arg-type]

        with mock.patch.object(membership, "do_leave", leave_then_die):
            with self.captureOnCommitCallbacks(execute=True):
                do_deactivate_user(User.objects.get(pk=self.bob.pk))  # the error is logged
        still_in = [r for r in rooms if self.bob.user_id in self.members(r)]
        self.assertEqual(len(still_in), 2)
        with mock.patch.object(membership, "DEACTIVATED_BATCH", 1):
            self.assertEqual(leave_rooms_of_deactivated_users(), 1)  # one batch a run
            self.assertEqual(leave_rooms_of_deactivated_users(), 1)
            self.assertEqual(leave_rooms_of_deactivated_users(), 0)
        for room in rooms:
            self.assertEqual(self.members(room), [self.alice.user_id])

    def test_erase_leaves_no_profile_in_the_directory_or_the_leave_events(self) -> None:
        room = self.room(self.alice, preset="public_chat")
        self.api(self.bob).put(
            f"/_matrix/client/v3/profile/{self.bob.user_id}/displayname",
            {"displayname": "Robert Findme"},
        )
        self.api(self.bob).put(
            f"/_matrix/client/v3/profile/{self.bob.user_id}/avatar_url",
            {"avatar_url": "mxc://test.local/bob"},
        )
        self.api(self.bob).post(f"/_matrix/client/v3/join/{room}", {})
        search = "/_matrix/client/v3/user_directory/search"
        found = self.api(self.alice).post(search, {"search_term": "findme"}).body["results"]
        self.assertEqual([r["user_id"] for r in found], [self.bob.user_id])
        with self.captureOnCommitCallbacks(execute=False):  # before any room is left
            response = self.deactivate(self.bob, self.password, erase=True)
        self.assertEqual(response.status_code, 200, response.body)
        bob = User.objects.get(pk=self.bob.pk)
        self.assertEqual((bob.displayname, bob.avatar_url, bob.profile_fields), (None, None, {}))
        for term in ("findme", "bob"):
            self.assertEqual(
                self.api(self.alice).post(search, {"search_term": term}).body["results"], []
            )
        from rooms.actions.membership import leave_rooms_of_deactivated_users

        leave_rooms_of_deactivated_users()
        leave = (
            self.api(self.alice)
            .get(f"/_matrix/client/v3/rooms/{room}/state/m.room.member/{self.bob.user_id}")
            .body
        )
        self.assertEqual(leave, {"membership": "leave", "reason": "Account deactivated"})
