from __future__ import annotations

from unittest import mock

from accounts.models import User
from matrixhs.errors import Forbidden
from rooms.models import Room, RoomAlias, RoomMembership
from serveradmin.actions.rooms import run_room_deletions
from serveradmin.models import RoomDeletion
from serveradmin.tests.base import V1, V2, AdminTestCase

CLIENT = "/_matrix/client/v3"


class RoomsCase(AdminTestCase):
    def create_room(self, user: User, **body: object) -> str:
        response = self.api(user).post(f"{CLIENT}/createRoom", body)
        self.assertEqual(response.status_code, 200, response.body)
        return str(response.body["room_id"])

    def join(self, user: User, room_id: str) -> int:
        return self.api(user).post(f"{CLIENT}/join/{room_id}", {}).status_code


class ListRoomsTests(RoomsCase):
    def test_lists_with_summaries_and_pages(self) -> None:
        a = self.create_room(self.bob, name="Alpha", preset="public_chat")
        b = self.create_room(self.bob, name="Bravo")
        c = self.create_room(self.mallory, name="Charlie")
        self.join(self.mallory, a)
        api = self.api(self.alice)
        body = api.get(f"{V1}/rooms?limit=2").body
        self.assertEqual(body["total_rooms"], 3)
        self.assertEqual([r["room_id"] for r in body["rooms"]], [a, b])
        self.assertEqual(body["next_batch"], 2)
        alpha = body["rooms"][0]
        self.assertEqual((alpha["name"], alpha["joined_members"]), ("Alpha", 2))
        self.assertEqual(alpha["joined_local_members"], 2)
        self.assertEqual((alpha["join_rules"], alpha["creator"]), ("public", "@bob:test.local"))
        self.assertTrue(alpha["federatable"])
        rest = api.get(f"{V1}/rooms?from=2").body
        self.assertEqual([r["room_id"] for r in rest["rooms"]], [c])
        self.assertNotIn("next_batch", rest)
        by_size = api.get(f"{V1}/rooms?order_by=joined_members").body["rooms"]
        self.assertEqual(by_size[0]["room_id"], a)  # largest first, as in Synapse
        smallest = api.get(f"{V1}/rooms?order_by=joined_members&dir=b").body["rooms"]
        self.assertEqual(smallest[-1]["room_id"], a)
        by_name = [r["name"] for r in api.get(f"{V1}/rooms?dir=b").body["rooms"]]
        self.assertEqual(by_name, ["Charlie", "Bravo", "Alpha"])
        found = api.get(f"{V1}/rooms?search_term=brav").body
        self.assertEqual([r["room_id"] for r in found["rooms"]], [b])

    def test_a_page_costs_a_fixed_number_of_queries(self) -> None:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        api = self.api(self.alice)
        for i in range(2):
            self.create_room(self.bob, name=f"room {i}")
        with CaptureQueriesContext(connection) as few:
            api.get(f"{V1}/rooms")
        for i in range(4):
            self.create_room(self.bob, name=f"more {i}")
        with CaptureQueriesContext(connection) as many:
            self.assertEqual(len(api.get(f"{V1}/rooms").body["rooms"]), 6)
        self.assertEqual(len(many), len(few))

    def test_every_order_answers_every_room(self) -> None:
        from serveradmin.queries.rooms import ROOM_ORDER

        named = self.create_room(self.bob, name="Named")
        unnamed = self.create_room(self.mallory)
        api = self.api(self.alice)
        for order_by in ROOM_ORDER:
            for direction in ("f", "b"):
                body = api.get(f"{V1}/rooms?order_by={order_by}&dir={direction}").body
                ids = [r["room_id"] for r in body["rooms"]]
                self.assertEqual(sorted(ids), sorted([named, unnamed]), order_by)
        by_name = api.get(f"{V1}/rooms?order_by=name&dir=b").body["rooms"]
        self.assertEqual([r["room_id"] for r in by_name], [named, unnamed])  # no name: last

    def test_bad_params(self) -> None:
        api = self.api(self.alice)
        for query in ("order_by=nope", "dir=x", "limit=0", "from=-3"):
            self.assert_matrix_error(api.get(f"{V1}/rooms?{query}"), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(self.api(self.bob).get(f"{V1}/rooms"), 403, "M_FORBIDDEN")


class RoomDetailTests(RoomsCase):
    def test_details_members_state_messages(self) -> None:
        room_id = self.create_room(self.bob, name="Secret", preset="private_chat")
        self.api(self.bob).put(
            f"{CLIENT}/rooms/{room_id}/send/m.room.message/t1", {"msgtype": "m.text", "body": "hi"}
        )
        api = self.api(self.alice)
        details = api.get(f"{V1}/rooms/{room_id}").body
        self.assertEqual(details["name"], "Secret")
        self.assertEqual(details["joined_local_devices"], 1)
        self.assertFalse(details["blocked"])
        self.assertEqual(
            api.get(f"{V1}/rooms/{room_id}/members").body,
            {"members": ["@bob:test.local"], "total": 1},
        )
        state = api.get(f"{V1}/rooms/{room_id}/state").body["state"]
        self.assertIn("m.room.create", {e["type"] for e in state})
        # The admin is not in the room, and its history is not world-readable.
        messages = api.get(f"{V1}/rooms/{room_id}/messages?dir=b&limit=5").body
        self.assertEqual(messages["chunk"][0]["content"]["body"], "hi")
        self.assertIn("end", messages)

    def test_unknown_and_malformed_rooms(self) -> None:
        api = self.api(self.alice)
        for suffix in ("", "/members", "/state", "/messages"):
            self.assert_matrix_error(
                api.get(f"{V1}/rooms/!nope:test.local{suffix}"), 404, "M_NOT_FOUND"
            )
            self.assert_matrix_error(api.get(f"{V1}/rooms/nope{suffix}"), 400, "M_INVALID_PARAM")


class BlockTests(RoomsCase):
    def test_blocked_room_cannot_be_joined_by_local_users(self) -> None:
        room_id = self.create_room(self.bob, preset="public_chat")
        api = self.api(self.alice)
        self.assertEqual(api.get(f"{V1}/rooms/{room_id}/block").body, {"block": False})
        self.assertEqual(
            api.put(f"{V1}/rooms/{room_id}/block", {"block": True}).body, {"block": True}
        )
        self.assertEqual(
            api.get(f"{V1}/rooms/{room_id}/block").body,
            {"block": True, "user_id": "@alice:test.local"},
        )
        self.assert_audited("room.block", room_id)
        join = self.api(self.mallory).post(f"{CLIENT}/join/{room_id}", {})
        self.assert_matrix_error(join, 403, "M_FORBIDDEN")
        invite = self.api(self.bob).post(
            f"{CLIENT}/rooms/{room_id}/invite", {"user_id": "@mallory:test.local"}
        )
        self.assert_matrix_error(invite, 403, "M_FORBIDDEN")
        api.put(f"{V1}/rooms/{room_id}/block", {"block": False})
        self.assertEqual(self.join(self.mallory, room_id), 200)

    def test_unknown_rooms_can_be_blocked(self) -> None:
        response = self.api(self.alice).put(f"{V1}/rooms/!far:elsewhere/block", {"block": True})
        self.assertEqual(response.status_code, 200)
        bad = self.api(self.alice).put(f"{V1}/rooms/!far:elsewhere/block", {"block": "y"})
        self.assert_matrix_error(bad, 400, "M_BAD_JSON")


class DeleteRoomTests(RoomsCase):
    def test_shutdown_moves_members_blocks_and_purges(self) -> None:
        room_id = self.create_room(self.bob, preset="public_chat", room_alias_name="doomed")
        self.join(self.mallory, room_id)
        api = self.api(self.alice)
        response = api.delete(
            f"{V2}/rooms/{room_id}",
            {"new_room_user_id": "@notices:test.local", "message": "Moved.", "block": True},
        )
        self.assertEqual(response.status_code, 200, response.body)
        delete_id = response.body["delete_id"]
        status = api.get(f"{V2}/rooms/delete_status/{delete_id}").body
        self.assertEqual(status["status"], "scheduled")
        self.assertEqual(run_room_deletions(), 1)
        status = api.get(f"{V2}/rooms/delete_status/{delete_id}").body
        self.assertEqual(status["status"], "complete", status)
        shutdown = status["shutdown_room"]
        self.assertEqual(
            sorted(shutdown["kicked_users"]), ["@bob:test.local", "@mallory:test.local"]
        )
        self.assertEqual(shutdown["local_aliases"], ["#doomed:test.local"])
        new_room_id = shutdown["new_room_id"]
        self.assertFalse(Room.objects.filter(room_id=room_id).exists())
        joined = set(
            RoomMembership.objects.filter(room__room_id=new_room_id, membership="join").values_list(
                "user_id", flat=True
            )
        )
        self.assertEqual(joined, {"@notices:test.local", "@bob:test.local", "@mallory:test.local"})
        self.assertEqual(
            RoomAlias.objects.get(alias="#doomed:test.local").room.room_id, new_room_id
        )
        self.assertEqual(self.api(self.bob).post(f"{CLIENT}/join/{room_id}", {}).status_code, 403)
        by_room = api.get(f"{V2}/rooms/{room_id}/delete_status").body["results"]
        self.assertEqual(by_room[0]["delete_id"], delete_id)
        self.assert_audited("room.delete", room_id)

    def test_an_interrupted_deletion_resumes(self) -> None:
        room_id = self.create_room(self.bob)
        delete_id = self.api(self.alice).delete(f"{V2}/rooms/{room_id}", {}).body["delete_id"]
        # A runner claimed it and died: once its lease lapses, the next run finishes it.
        RoomDeletion.objects.filter(delete_id=delete_id).update(status="active", lease_until_ts=1)
        self.assertEqual(run_room_deletions(), 1)
        self.assertEqual(RoomDeletion.objects.get(delete_id=delete_id).status, "complete")
        self.assertFalse(Room.objects.filter(room_id=room_id).exists())
        self.assertEqual(run_room_deletions(), 0)

    def test_errors(self) -> None:
        api = self.api(self.alice)
        self.assert_matrix_error(api.delete(f"{V2}/rooms/!nope:test.local", {}), 404, "M_NOT_FOUND")
        self.assert_matrix_error(api.delete(f"{V2}/rooms/nope", {}), 400, "M_INVALID_PARAM")
        room_id = self.create_room(self.bob)
        remote = api.delete(f"{V2}/rooms/{room_id}", {"new_room_user_id": "@x:elsewhere"})
        self.assert_matrix_error(remote, 400, "M_INVALID_PARAM")
        self.assert_matrix_error(api.get(f"{V2}/rooms/delete_status/unknown"), 404, "M_NOT_FOUND")
        self.assert_matrix_error(
            self.api(self.bob).delete(f"{V2}/rooms/{room_id}", {}), 403, "M_FORBIDDEN"
        )

    def test_new_room_creator_who_was_a_member_leaves_too(self) -> None:
        room_id = self.create_room(self.bob)
        api = self.api(self.alice)
        delete_id = api.delete(
            f"{V2}/rooms/{room_id}", {"new_room_user_id": "@bob:test.local", "purge": True}
        ).body["delete_id"]
        run_room_deletions()
        status = api.get(f"{V2}/rooms/delete_status/{delete_id}").body
        self.assertEqual(status["status"], "complete", status)
        self.assertEqual(status["shutdown_room"]["kicked_users"], ["@bob:test.local"])
        self.assertFalse(Room.objects.filter(room_id=room_id).exists())

    def test_without_purge_the_room_stays_but_is_emptied(self) -> None:
        room_id = self.create_room(self.bob)
        api = self.api(self.alice)
        api.delete(f"{V2}/rooms/{room_id}", {"purge": False})
        run_room_deletions()
        self.assertTrue(Room.objects.filter(room_id=room_id).exists())
        self.assertFalse(
            RoomMembership.objects.filter(room__room_id=room_id, membership="join").exists()
        )

    def test_v1_delete_runs_while_the_request_waits(self) -> None:
        room_id = self.create_room(self.bob)
        response = self.api(self.alice).delete(f"{V1}/rooms/{room_id}", {"block": True})
        self.assertEqual(response.status_code, 200, response.body)
        self.assertEqual(
            response.body,
            {
                "kicked_users": ["@bob:test.local"],
                "failed_to_kick_users": [],
                "local_aliases": [],
                "new_room_id": None,
            },
        )
        self.assertFalse(Room.objects.filter(room_id=room_id).exists())
        self.assertEqual(RoomDeletion.objects.get(room_id=room_id).status, "complete")
        self.assertEqual(run_room_deletions(), 0)

    def test_v1_delete_that_cannot_purge_says_why(self) -> None:
        room_id = self.create_room(self.bob)
        with mock.patch("serveradmin.actions.rooms.do_leave", side_effect=Forbidden("no")):
            response = self.api(self.alice).delete(f"{V1}/rooms/{room_id}", {})
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")
        job = RoomDeletion.objects.get(room_id=room_id)
        self.assertEqual(job.status, "failed")
        self.assertEqual(job.result["failed_to_kick_users"], ["@bob:test.local"])
        self.assertTrue(Room.objects.filter(room_id=room_id).exists())
