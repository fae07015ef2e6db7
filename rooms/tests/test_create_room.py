from __future__ import annotations

import json

from django.test import override_settings

from matrixhs.testing import assert_event_conforms
from rooms.models import Event, Room, RoomAlias
from rooms.tests.base import V3, RoomTestCase, q


class CreateRoomTests(RoomTestCase):
    def state(self, room_id: str) -> dict[tuple[str, str], dict]:
        events = self.api(self.alice).get(f"{V3}/rooms/{q(room_id)}/state").body
        return {(e["type"], e["state_key"]): e for e in events}

    @override_settings(MATRIXHS_DEFAULT_ROOM_VERSION="10")
    def test_default_room_version_setting(self) -> None:
        room_id = self.create_room(self.alice)
        state = self.state(room_id)
        create = state[("m.room.create", "")]["content"]
        self.assertEqual(create["room_version"], "10")
        self.assertEqual(create["creator"], "@alice:test.local")
        levels = state[("m.room.power_levels", "")]["content"]
        self.assertEqual(levels["users"]["@alice:test.local"], 100)
        explicit = self.create_room(self.alice, room_version="12")
        self.assertEqual(
            self.state(explicit)[("m.room.create", "")]["content"]["room_version"], "12"
        )

    def test_default_is_private_chat_in_v12(self) -> None:
        room_id = self.create_room(self.alice)
        state = self.state(room_id)
        create = state[("m.room.create", "")]
        self.assertEqual(create["content"]["room_version"], "12")
        self.assertEqual(room_id, "!" + create["event_id"][1:])  # v12: ID from the create event
        self.assertEqual(state[("m.room.join_rules", "")]["content"], {"join_rule": "invite"})
        self.assertEqual(
            state[("m.room.history_visibility", "")]["content"]["history_visibility"], "shared"
        )
        self.assertEqual(state[("m.room.guest_access", "")]["content"]["guest_access"], "can_join")
        self.assertEqual(
            state[("m.room.member", "@alice:test.local")]["content"]["membership"], "join"
        )
        levels = state[("m.room.power_levels", "")]["content"]
        self.assertNotIn("@alice:test.local", levels["users"])  # v12 creators are implicit
        self.assertGreater(levels["events"]["m.room.tombstone"], levels["state_default"])
        for event in state.values():
            assert_event_conforms(event)

    def test_event_order_follows_the_spec(self) -> None:
        room_id = self.create_room(
            self.alice,
            name="N",
            topic="T",
            room_alias_name="ordered",
            invite=["@bob:test.local"],
            preset="public_chat",
        )
        order = [
            (e.type, e.state_key)
            for e in Event.objects.order_by("stream_ordering")
            if e.room.room_id == room_id
        ]
        self.assertEqual(
            order,
            [
                ("m.room.create", ""),
                ("m.room.member", "@alice:test.local"),
                ("m.room.power_levels", ""),
                ("m.room.canonical_alias", ""),
                ("m.room.join_rules", ""),
                ("m.room.history_visibility", ""),
                ("m.room.guest_access", ""),
                ("m.room.name", ""),
                ("m.room.topic", ""),
                ("m.room.member", "@bob:test.local"),
            ],
        )

    def test_v10_and_v11_list_the_creator_in_power_levels(self) -> None:
        for version in ("10", "11"):
            room_id = self.create_room(self.alice, room_version=version)
            state = self.state(room_id)
            self.assertEqual(
                state[("m.room.power_levels", "")]["content"]["users"], {"@alice:test.local": 100}
            )
            self.assertTrue(room_id.endswith(":test.local"))
            create = state[("m.room.create", "")]["content"]
            self.assertEqual("creator" in create, version == "10")

    def test_public_chat_with_alias_name_topic(self) -> None:
        room_id = self.create_room(
            self.alice,
            preset="public_chat",
            room_alias_name="lobby",
            name="Lobby",
            topic="Say hi",
            visibility="public",
        )
        state = self.state(room_id)
        self.assertEqual(state[("m.room.join_rules", "")]["content"]["join_rule"], "public")
        self.assertEqual(
            state[("m.room.canonical_alias", "")]["content"]["alias"], "#lobby:test.local"
        )
        self.assertEqual(state[("m.room.name", "")]["content"]["name"], "Lobby")
        topic = state[("m.room.topic", "")]["content"]
        self.assertEqual(topic["topic"], "Say hi")
        self.assertEqual(topic["m.topic"]["m.text"][0]["mimetype"], "text/plain")
        self.assertTrue(Room.objects.get(room_id=room_id).is_public)

    def test_invite_with_is_direct(self) -> None:
        room_id = self.create_room(
            self.alice, invite=["@bob:test.local"], is_direct=True, preset="trusted_private_chat"
        )
        state = self.state(room_id)
        invite = state[("m.room.member", "@bob:test.local")]["content"]
        self.assertEqual((invite["membership"], invite["is_direct"]), ("invite", True))
        create = state[("m.room.create", "")]["content"]
        self.assertEqual(create["additional_creators"], ["@bob:test.local"])

    def test_additional_creators_must_be_user_ids(self) -> None:
        for bad in ("not-a-list", ["@foo:example.com", 42], ["not-a-user-id"], ["@x:dom$ain"]):
            response = self.api(self.alice).post(
                f"{V3}/createRoom",
                {"room_version": "12", "creation_content": {"additional_creators": bad}},
            )
            self.assert_matrix_error(response, 400, "M_BAD_JSON")
        good = {"additional_creators": ["@foo:example.com", "@bar:baz.example"]}
        response = self.api(self.alice).post(
            f"{V3}/createRoom", {"room_version": "12", "creation_content": good}
        )
        self.assertEqual(response.status_code, 200, response.body)

    def test_creators_cannot_be_given_power_and_create_is_not_sent_again(self) -> None:
        for version in ("11", "12"):
            room_id = self.create_room(self.alice, room_version=version)
            create = self.api(self.alice).put(
                f"{V3}/rooms/{q(room_id)}/state/m.room.create/",
                {"room_version": version, "entropy": 100},
            )
            self.assert_matrix_error(create, 400, "M_BAD_JSON")
        room_id = self.create_room(self.alice, room_version="12")
        levels = self.api(self.alice).put(
            f"{V3}/rooms/{q(room_id)}/state/m.room.power_levels/",
            {"users": {"@alice:test.local": 100}},
        )
        self.assert_matrix_error(levels, 400, "M_BAD_JSON")
        fine = self.api(self.alice).put(
            f"{V3}/rooms/{q(room_id)}/state/m.room.power_levels/", {"users": {}}
        )
        self.assertEqual(fine.status_code, 200, fine.body)

    def test_initial_state_and_overrides(self) -> None:
        room_id = self.create_room(
            self.alice,
            initial_state=[
                {"type": "m.room.encryption", "content": {"algorithm": "m.megolm.v1.aes-sha2"}},
                {"type": "m.room.join_rules", "content": {"join_rule": "public"}},
                {"type": "m.room.name", "content": {"name": "overridden"}},
            ],
            name="Final name",
            creation_content={"m.federate": False},
            power_level_content_override={"events_default": 10},
        )
        state = self.state(room_id)
        self.assertEqual(
            state[("m.room.encryption", "")]["content"]["algorithm"], "m.megolm.v1.aes-sha2"
        )
        self.assertEqual(state[("m.room.join_rules", "")]["content"]["join_rule"], "public")
        self.assertEqual(state[("m.room.name", "")]["content"]["name"], "Final name")
        self.assertIs(state[("m.room.create", "")]["content"]["m.federate"], False)
        self.assertEqual(state[("m.room.power_levels", "")]["content"]["events_default"], 10)

    def test_unsupported_room_version(self) -> None:
        for version in ("999", "0", "1.0"):
            response = self.api(self.alice).post(f"{V3}/createRoom", {"room_version": version})
            self.assert_matrix_error(response, 400, "M_UNSUPPORTED_ROOM_VERSION")
        self.assertFalse(Room.objects.exists())

    def test_alias_in_use(self) -> None:
        self.create_room(self.alice, room_alias_name="taken")
        response = self.api(self.bob).post(f"{V3}/createRoom", {"room_alias_name": "taken"})
        self.assert_matrix_error(response, 400, "M_ROOM_IN_USE")
        self.assertEqual(Room.objects.count(), 1)

    def test_invalid_room_state_leaves_nothing(self) -> None:
        response = self.api(self.alice).post(
            f"{V3}/createRoom",
            {
                "room_version": "11",
                "room_alias_name": "ghost",
                "power_level_content_override": {"users": {"@alice:test.local": 0}},
                "name": "needs power 50",
            },
        )
        self.assert_matrix_error(response, 400, "M_INVALID_ROOM_STATE")
        self.assertFalse(Room.objects.exists())
        self.assertFalse(Event.objects.exists())
        self.assertFalse(RoomAlias.objects.exists())

    def test_bad_bodies(self) -> None:
        api = self.api(self.alice)
        self.assert_matrix_error(api.post(f"{V3}/createRoom", {"name": 5}), 400, "M_BAD_JSON")
        self.assert_matrix_error(api.post(f"{V3}/createRoom", {"preset": "x"}), 400, "M_BAD_JSON")
        self.assert_matrix_error(
            api.post(f"{V3}/createRoom", {"invite": ["bob"]}), 400, "M_INVALID_PARAM"
        )
        self.assert_matrix_error(
            api.post(f"{V3}/createRoom", {"initial_state": [{"type": "x"}]}), 400, "M_BAD_JSON"
        )
        self.assert_matrix_error(
            api.post(f"{V3}/createRoom", {"room_alias_name": "a b"}), 400, "M_INVALID_PARAM"
        )
        self.assertFalse(Room.objects.exists())

    def test_stored_pdu_is_the_signed_canonical_json(self) -> None:
        room_id = self.create_room(self.alice)
        create = Event.objects.get(room__room_id=room_id, type="m.room.create")
        pdu = json.loads(create.json)
        self.assertNotIn("room_id", pdu)  # v12 create events carry no room_id
        self.assertIn("test.local", pdu["signatures"])
        self.assertIn("sha256", pdu["hashes"])


class TwinRoomTests(RoomTestCase):
    def test_identical_requests_in_one_millisecond_make_two_rooms(self) -> None:
        from unittest import mock

        with mock.patch("rooms.events.now_ms", return_value=1_800_000_000_000):
            first = self.create_room(self.alice, name="Twin")
            second = self.create_room(self.alice, name="Twin")
        self.assertNotEqual(first, second)
        self.assertEqual(Room.objects.count(), 2)
