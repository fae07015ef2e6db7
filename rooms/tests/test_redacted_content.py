"""Once an event is redacted, every read serves its redacted form: the event itself, the
``prev_content`` of the next state event, stripped state, room names, member profiles;
and the auth rules and state decisions see the redacted form too (as other servers do)."""

from __future__ import annotations

from typing import Any

from rooms.tests.base import V3, RoomTestCase, q
from sync.tests.test_sliding_sync import EVERYTHING, SlidingSyncTestCase


class RedactedContentTests(SlidingSyncTestCase):
    def redact(self, user: Any, room: str, event_id: str) -> None:
        response = self.api(user).put(f"{V3}/rooms/{q(room)}/redact/{q(event_id)}/r{event_id}", {})
        self.assertEqual(response.status_code, 200, response.body)

    def state_event_id(self, user: Any, room: str, event_type: str, state_key: str = "") -> str:
        url = f"{V3}/rooms/{q(room)}/state/{event_type}/{q(state_key)}?format=event"
        return str(self.api(user).get(url).body["event_id"])

    def test_prev_content_of_the_next_state_event_is_redacted(self) -> None:
        room = self.create_room(self.alice, preset="public_chat", topic="the secret plan")
        self.join(self.bob, room)
        self.redact(self.alice, room, self.state_event_id(self.alice, room, "m.room.topic"))
        new = self.set_state(self.alice, room, "m.room.topic", {"topic": "nothing to see"})
        event_id = new.body["event_id"]
        event = self.api(self.bob).get(f"{V3}/rooms/{q(room)}/event/{q(event_id)}").body
        self.assertEqual(event["unsigned"]["prev_content"], {})
        synced = self.sync(self.bob)["rooms"]["join"][room]["timeline"]["events"]
        [topic] = [e for e in synced if e["event_id"] == event_id]
        self.assertEqual(topic["unsigned"]["prev_content"], {})

    def test_invite_state_is_redacted(self) -> None:
        room = self.create_room(self.alice, name="Secret name")
        self.redact(self.alice, room, self.state_event_id(self.alice, room, "m.room.name"))
        self.invite(self.alice, room, self.bob)
        classic = self.sync(self.bob)["rooms"]["invite"][room]["invite_state"]["events"]
        sliding = self.slide(self.bob, {"lists": {"all": EVERYTHING}})["rooms"][room]
        for stripped in (classic, sliding["invite_state"]):
            [name] = [e for e in stripped if e["type"] == "m.room.name"]
            self.assertEqual(name["content"], {})
        self.assertNotIn("Secret name", str(classic) + str(sliding))

    def test_redacted_invite_is_stripped_redacted(self) -> None:
        room = self.create_room(self.alice)
        invite = self.api(self.alice).post(
            f"{V3}/rooms/{q(room)}/invite", {"user_id": self.bob.user_id, "reason": "secret"}
        )
        self.assertEqual(invite.status_code, 200)
        self.redact(
            self.alice,
            room,
            self.state_event_id(self.alice, room, "m.room.member", "@bob:test.local"),
        )
        stripped = self.sync(self.bob)["rooms"]["invite"][room]["invite_state"]["events"]
        [own] = [e for e in stripped if e["type"] == "m.room.member"]
        self.assertEqual(own["content"], {"membership": "invite"})

    def test_sliding_sync_does_not_name_a_room_by_a_redacted_name(self) -> None:
        room = self.create_room(self.alice, name="Secret name")
        self.redact(self.alice, room, self.state_event_id(self.alice, room, "m.room.name"))
        body = self.slide(self.alice, {"lists": {"all": EVERYTHING}})
        self.assertNotIn("name", body["rooms"][room])
        by_name = {**EVERYTHING, "filters": {"room_name_like": "secret"}}
        self.assertEqual(
            self.slide(self.alice, {"lists": {"n": by_name}})["lists"]["n"]["count"], 0
        )

    def test_a_redacted_member_event_takes_the_profile_with_it(self) -> None:
        carol = self.make_user("carol", displayname="Carol Secret")
        room = self.create_room(self.alice, preset="public_chat")
        self.join(carol, room)
        self.redact(
            self.alice, room, self.state_event_id(self.alice, room, "m.room.member", carol.user_id)
        )
        joined = self.api(self.alice).get(f"{V3}/rooms/{q(room)}/joined_members").body["joined"]
        self.assertEqual(joined[carol.user_id], {})
        heroes = self.slide(self.alice, {"lists": {"all": EVERYTHING}})["rooms"][room]["heroes"]
        self.assertEqual(heroes, [{"user_id": carol.user_id}])
        # The directory shows a local user with their profile, which a room's redaction
        # does not touch (and which GET /profile serves anyway).
        found = self.api(self.alice).post(f"{V3}/user_directory/search", {"search_term": "secret"})
        self.assertEqual(
            found.body["results"], [{"user_id": carol.user_id, "display_name": "Carol Secret"}]
        )

    def test_setting_state_again_after_a_redaction_sends_it_anew(self) -> None:
        room = self.create_room(self.alice)
        first = self.set_state(self.alice, room, "m.room.name", {"name": "again"}).body["event_id"]
        self.redact(self.alice, room, first)
        again = self.set_state(self.alice, room, "m.room.name", {"name": "again"})
        self.assertNotEqual(again.body["event_id"], first)
        name = self.api(self.alice).get(f"{V3}/rooms/{q(room)}/state/m.room.name/").body
        self.assertEqual(name, {"name": "again"})


class RedactedAuthStateTests(RoomTestCase):
    def test_auth_rules_see_redacted_power_levels(self) -> None:
        # Before v11 the redaction algorithm drops "invite" from m.room.power_levels: once
        # the event is redacted, every server reads the invite level as its default (0).
        room = self.create_room(
            self.alice,
            preset="public_chat",
            room_version="10",
            power_level_content_override={"invite": 100},
        )
        self.join(self.bob, room)
        refused = self.invite(self.bob, room, self.mallory)  # also caches the power levels
        self.assert_matrix_error(refused, 403, "M_FORBIDDEN")
        levels = self.api(self.alice).get(
            f"{V3}/rooms/{q(room)}/state/m.room.power_levels/?format=event"
        )
        redaction = self.api(self.alice).put(
            f"{V3}/rooms/{q(room)}/redact/{q(levels.body['event_id'])}/r1", {}
        )
        self.assertEqual(redaction.status_code, 200)
        self.assertEqual(self.invite(self.bob, room, self.mallory).status_code, 200)
