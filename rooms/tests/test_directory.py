from __future__ import annotations

from rooms.models import RoomAlias
from rooms.tests.base import V3, RoomTestCase, q

ALIAS = q("#club:test.local")


class AliasTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(self.alice, preset="public_chat")

    def test_put_get_delete(self) -> None:
        put = self.api(self.alice).put(f"{V3}/directory/room/{ALIAS}", {"room_id": self.room})
        self.assertEqual(put.status_code, 200)
        got = self.api().get(f"{V3}/directory/room/{ALIAS}")  # no token needed
        self.assertEqual(got.body, {"room_id": self.room, "servers": ["test.local"]})
        aliases = self.api(self.alice).get(f"{V3}/rooms/{q(self.room)}/aliases").body
        self.assertEqual(aliases, {"aliases": ["#club:test.local"]})
        self.assertEqual(
            self.api(self.alice).delete(f"{V3}/directory/room/{ALIAS}").status_code, 200
        )
        self.assert_matrix_error(self.api().get(f"{V3}/directory/room/{ALIAS}"), 404, "M_NOT_FOUND")

    def test_existing_alias_is_a_conflict(self) -> None:
        self.api(self.alice).put(f"{V3}/directory/room/{ALIAS}", {"room_id": self.room})
        again = self.api(self.alice).put(f"{V3}/directory/room/{ALIAS}", {"room_id": self.room})
        self.assertEqual(again.status_code, 409)

    def test_only_members_add_and_only_owners_delete(self) -> None:
        response = self.api(self.mallory).put(
            f"{V3}/directory/room/{ALIAS}", {"room_id": self.room}
        )
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.api(self.alice).put(f"{V3}/directory/room/{ALIAS}", {"room_id": self.room})
        self.join(self.mallory, self.room)
        response = self.api(self.mallory).delete(f"{V3}/directory/room/{ALIAS}")
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertTrue(RoomAlias.objects.exists())

    def canonical_alias(self) -> dict:
        url = f"{V3}/rooms/{q(self.room)}/state/m.room.canonical_alias/"
        return dict(self.api(self.alice).get(url).body)

    def test_deleting_the_canonical_alias_takes_it_out_of_the_state(self) -> None:
        for alias in ("#club:test.local", "#alt:test.local", "#other:test.local"):
            self.api(self.alice).put(f"{V3}/directory/room/{q(alias)}", {"room_id": self.room})
        content = {"alias": "#club:test.local", "alt_aliases": ["#alt:test.local"]}
        self.set_state(self.alice, self.room, "m.room.canonical_alias", content)
        self.api(self.alice).delete(f"{V3}/directory/room/{q('#other:test.local')}")
        self.assertEqual(self.canonical_alias(), content)  # not named: no event
        self.api(self.alice).delete(f"{V3}/directory/room/{ALIAS}")
        self.assertEqual(self.canonical_alias(), {"alt_aliases": ["#alt:test.local"]})
        self.api(self.alice).delete(f"{V3}/directory/room/{q('#alt:test.local')}")
        self.assertEqual(self.canonical_alias(), {"alt_aliases": []})

    def test_alias_deleted_by_someone_who_may_not_change_the_state_still_goes(self) -> None:
        self.join(self.bob, self.room)
        self.api(self.bob).put(f"{V3}/directory/room/{ALIAS}", {"room_id": self.room})
        self.set_state(
            self.alice, self.room, "m.room.canonical_alias", {"alias": "#club:test.local"}
        )
        response = self.api(self.bob).delete(f"{V3}/directory/room/{ALIAS}")
        self.assertEqual(response.status_code, 200, response.body)
        self.assertFalse(RoomAlias.objects.exists())
        self.assertEqual(self.canonical_alias(), {"alias": "#club:test.local"})

    def test_bad_aliases(self) -> None:
        response = self.api(self.alice).put(f"{V3}/directory/room/nohash", {"room_id": self.room})
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")
        # (With federation, another server's alias is asked there: federation/tests.)
        with self.settings(MATRIXHS_FEDERATION_ENABLED=False):
            response = self.api().get(f"{V3}/directory/room/{q('#x:elsewhere.example')}")
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")

    def test_aliases_of_a_private_room_are_for_members(self) -> None:
        private = self.create_room(self.alice)
        response = self.api(self.mallory).get(f"{V3}/rooms/{q(private)}/aliases")
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")


class PublicRoomsTests(RoomTestCase):
    def test_listing_visibility_filter_and_paging(self) -> None:
        big = self.create_room(
            self.alice, preset="public_chat", visibility="public", name="Big talk"
        )
        small = self.create_room(self.bob, preset="public_chat", visibility="public", name="Small")
        self.create_room(self.alice, preset="public_chat", name="Unlisted")
        self.join(self.bob, big)
        rooms = self.api().get(f"{V3}/publicRooms").body
        self.assertEqual([r["room_id"] for r in rooms["chunk"]], [big, small])
        self.assertEqual(rooms["chunk"][0]["num_joined_members"], 2)
        self.assertEqual(rooms["chunk"][0]["join_rule"], "public")
        page = self.api().get(f"{V3}/publicRooms?limit=1").body
        self.assertEqual(len(page["chunk"]), 1)
        rest = self.api().get(f"{V3}/publicRooms?limit=1&since={page['next_batch']}").body
        self.assertEqual([r["room_id"] for r in rest["chunk"]], [small])
        found = (
            self.api(self.alice)
            .post(f"{V3}/publicRooms", {"filter": {"generic_search_term": "talk"}})
            .body
        )
        self.assertEqual([r["room_id"] for r in found["chunk"]], [big])

    def test_visibility_endpoint(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        url = f"{V3}/directory/list/room/{q(room)}"
        self.assertEqual(self.api().get(url).body, {"visibility": "private"})
        self.join(self.bob, room)
        self.assert_matrix_error(
            self.api(self.bob).put(url, {"visibility": "public"}), 403, "M_FORBIDDEN"
        )
        self.assertEqual(self.api(self.alice).put(url, {"visibility": "public"}).status_code, 200)
        self.assertEqual(self.api().get(url).body, {"visibility": "public"})
        self.assert_matrix_error(
            self.api(self.alice).put(url, {"visibility": "secret"}), 400, "M_BAD_JSON"
        )

    def test_bad_since_and_remote_server(self) -> None:
        self.assert_matrix_error(
            self.api().get(f"{V3}/publicRooms?since=zzz"), 400, "M_INVALID_PARAM"
        )
        # Without federation, other servers' directories cannot be asked.
        with self.settings(MATRIXHS_FEDERATION_ENABLED=False):
            response = self.api(self.alice).post(f"{V3}/publicRooms?server=elsewhere.example", {})
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        response = self.api(self.alice).post(f"{V3}/publicRooms?server=bad%20name", {})
        self.assert_matrix_error(response, 400, "M_INVALID_PARAM")
