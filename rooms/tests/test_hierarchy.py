"""GET /v1/rooms/{roomId}/hierarchy: a space's rooms depth first, what the user may
see, suggested_only, max_depth, pagination."""

from __future__ import annotations

from typing import Any

from rooms.tests.base import V3, RoomTestCase, q

V1 = "/_matrix/client/v1"


class HierarchyTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        server = self.alice.user_id.split(":", 1)[1]
        self.via = {"via": [server]}
        self.space = self.create_room(
            self.alice,
            preset="public_chat",
            name="Space",
            creation_content={"type": "m.space"},
        )
        self.lobby = self.create_room(self.alice, preset="public_chat", name="Lobby")
        self.secret = self.create_room(self.alice, preset="private_chat", name="Secret")
        self.sub = self.create_room(
            self.alice, preset="public_chat", name="Sub", creation_content={"type": "m.space"}
        )
        self.deep = self.create_room(self.alice, preset="public_chat", name="Deep")
        self.last = self.create_room(self.alice, preset="public_chat", name="Last")
        self.add_child(self.space, self.lobby, order="b", suggested=True)
        self.add_child(self.space, self.secret, order="a")
        self.add_child(self.space, self.last, order="d")
        self.add_child(self.space, self.sub, order="c")
        self.add_child(self.sub, self.deep)

    def add_child(self, parent: str, child: str, **content: Any) -> None:
        got = self.api(self.alice).put(
            f"{V3}/rooms/{q(parent)}/state/m.space.child/{q(child)}", {**self.via, **content}
        )
        self.assertEqual(got.status_code, 200, got.body)

    def hierarchy(self, user: Any, query: str = "", room: str | None = None) -> Any:
        return self.api(user).get(f"{V1}/rooms/{q(room or self.space)}/hierarchy{query}")

    def names(self, body: Any) -> list[str]:
        return [r.get("name") for r in body["rooms"]]

    def test_depth_first_in_order_and_only_what_the_user_may_see(self) -> None:
        got = self.hierarchy(self.alice)
        self.assertEqual(got.status_code, 200, got.body)
        # Sub's subtree comes before Last, Sub's later sibling (breadth first would not).
        self.assertEqual(self.names(got.body), ["Space", "Secret", "Lobby", "Sub", "Deep", "Last"])
        root = got.body["rooms"][0]
        self.assertEqual(root["room_type"], "m.space")
        self.assertEqual(
            [c["state_key"] for c in root["children_state"]],
            [self.secret, self.lobby, self.sub, self.last],
        )
        self.assertEqual(
            self.names(self.hierarchy(self.bob).body), ["Space", "Lobby", "Sub", "Deep", "Last"]
        )

    def test_each_room_once_even_in_a_cycle(self) -> None:
        self.add_child(self.deep, self.space, order="a")
        self.add_child(self.deep, self.lobby, order="b")
        got = self.hierarchy(self.alice).body
        self.assertEqual(self.names(got), ["Space", "Secret", "Lobby", "Sub", "Deep", "Last"])
        deep = got["rooms"][4]
        self.assertEqual([c["state_key"] for c in deep["children_state"]], [self.space, self.lobby])

    def test_suggested_only_max_depth_and_pages(self) -> None:
        suggested = self.hierarchy(self.alice, "?suggested_only=true").body
        self.assertEqual(self.names(suggested), ["Space", "Lobby"])
        self.add_child(self.space, self.sub, order="c", suggested=True)
        self.add_child(self.sub, self.deep, suggested=True)
        suggested = self.hierarchy(self.alice, "?suggested_only=true").body
        self.assertEqual(self.names(suggested), ["Space", "Lobby", "Sub", "Deep"])
        self.assertEqual(
            [c["state_key"] for c in suggested["rooms"][0]["children_state"]],
            [self.lobby, self.sub],
        )
        shallow = self.hierarchy(self.alice, "?max_depth=1").body
        self.assertEqual(self.names(shallow), ["Space", "Secret", "Lobby", "Sub", "Last"])
        self.assertEqual(self.names(self.hierarchy(self.alice, "?max_depth=0").body), ["Space"])
        first = self.hierarchy(self.alice, "?limit=2").body
        self.assertEqual(self.names(first), ["Space", "Secret"])
        second = self.hierarchy(self.alice, f"?limit=2&from={first['next_batch']}").body
        self.assertEqual(self.names(second), ["Lobby", "Sub"])
        third = self.hierarchy(self.alice, f"?limit=2&from={second['next_batch']}").body
        self.assertEqual(self.names(third), ["Deep", "Last"])
        self.assertNotIn("next_batch", third)
        deep_pages = self.hierarchy(self.alice, "?limit=2&max_depth=1").body
        rest = self.hierarchy(self.alice, f"?limit=2&max_depth=1&from={deep_pages['next_batch']}")
        self.assertEqual(self.names(rest.body), ["Lobby", "Sub"])

    def test_a_page_must_keep_the_first_requests_filters(self) -> None:
        token = self.hierarchy(self.alice, "?limit=1").body["next_batch"]
        for changed in ("suggested_only=true", "max_depth=1"):
            self.assert_matrix_error(
                self.hierarchy(self.alice, f"?limit=1&{changed}&from={token}"),
                400,
                "M_INVALID_PARAM",
            )
        token = self.hierarchy(self.alice, "?limit=1&max_depth=2").body["next_batch"]
        self.assert_matrix_error(
            self.hierarchy(self.alice, f"?limit=1&from={token}"), 400, "M_INVALID_PARAM"
        )
        same = self.hierarchy(self.alice, f"?limit=1&max_depth=2&from={token}")
        self.assertEqual(self.names(same.body), ["Secret"])

    def test_errors(self) -> None:
        self.assert_matrix_error(self.hierarchy(self.bob, room=self.secret), 403, "M_FORBIDDEN")
        self.assert_matrix_error(
            self.hierarchy(self.alice, room="!nope:test.local"), 403, "M_FORBIDDEN"
        )
        self.assert_matrix_error(self.hierarchy(self.alice, "?from=zzz"), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(
            self.hierarchy(self.alice, "?suggested_only=yes"), 400, "M_INVALID_PARAM"
        )


class RoomSummaryTests(RoomTestCase):
    def test_summary_by_id_and_alias_for_who_may_see(self) -> None:
        room = self.create_room(
            self.alice,
            preset="public_chat",
            name="Hall",
            room_alias_name="hall",
            initial_state=[
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            ],
        )
        got = self.api(self.bob).get(f"{V1}/room_summary/{q(room)}")
        self.assertEqual(got.status_code, 200, got.body)
        self.assertEqual(got.body["name"], "Hall")
        self.assertEqual(got.body["membership"], "leave")
        self.assertEqual(got.body["encryption"], "m.megolm.v1.aes-sha2")
        self.assertIn("room_version", got.body)
        alias = f"#hall:{self.alice.user_id.split(':', 1)[1]}"
        by_alias = self.api().get(f"{V1}/room_summary/{q(alias)}")
        self.assertEqual((by_alias.status_code, by_alias.body["room_id"]), (200, room))
        self.assertEqual(
            self.api(self.alice).get(f"{V1}/room_summary/{q(room)}").body["membership"], "join"
        )
        secret = self.create_room(self.alice, preset="private_chat")
        self.assert_matrix_error(
            self.api(self.bob).get(f"{V1}/room_summary/{q(secret)}"), 404, "M_NOT_FOUND"
        )
        unstable = self.api(self.bob)
        unstable.check_spec = False  # MSC3266's path is not in the spec
        got = unstable.get(f"/_matrix/client/unstable/im.nheko.summary/rooms/{q(room)}/summary")
        self.assertEqual(got.body.get("room_id"), room, got.body)
