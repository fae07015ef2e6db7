"""unsigned.membership: the reader's membership at each event (spec v1.11, ClientEvent)."""

from __future__ import annotations

from rooms.tests.base import V3, RoomTestCase, q


class UnsignedMembershipTests(RoomTestCase):
    def test_membership_at_each_event_for_the_reader(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        before = self.send_ok(self.alice, room, "before bob")
        self.join(self.bob, room)
        after = self.send_ok(self.alice, room, "after bob")
        chunk = self.messages(self.bob, room, "dir=f&limit=50").body["chunk"]
        seen = {e["event_id"]: e["unsigned"]["membership"] for e in chunk}
        self.assertEqual(seen[before], "leave")
        self.assertEqual(seen[after], "join")
        own_join = next(e for e in chunk if e.get("state_key") == "@bob:test.local")
        self.assertEqual(own_join["unsigned"]["membership"], "join")
        for_alice = self.messages(self.alice, room, "dir=f&limit=50").body["chunk"]
        # The create event comes before its sender's own join.
        self.assertEqual(for_alice[0]["unsigned"]["membership"], "leave")
        self.assertEqual({e["unsigned"]["membership"] for e in for_alice[1:]}, {"join"})

    def test_after_leaving_the_reader_reads_leave(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        self.leave(self.bob, room)
        after = self.send_ok(self.alice, room, "bob is gone")
        event = self.api(self.alice).get(f"{V3}/rooms/{q(room)}/event/{q(after)}").body
        self.assertEqual(event["unsigned"]["membership"], "join")
        chunk = self.messages(self.bob, room, "dir=b&limit=1").body["chunk"]
        self.assertEqual(chunk[0]["unsigned"]["membership"], "leave")  # bob's own leave

    def test_sync_timeline_carries_it(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.send_ok(self.alice, room, "early")
        self.join(self.bob, room)
        timeline = self.sync(self.bob)["rooms"]["join"][room]["timeline"]["events"]
        by_type = [(e["type"], e["unsigned"]["membership"]) for e in timeline]
        self.assertEqual(by_type[0], ("m.room.create", "leave"))
        self.assertEqual(by_type[-1], ("m.room.member", "join"))
