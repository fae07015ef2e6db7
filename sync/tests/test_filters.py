"""Filters (matrixhs.filters) and stored filters (sync.filters): matching, event_fields."""

from __future__ import annotations

import json

from django.test import SimpleTestCase

from matrixhs.errors import MatrixError
from matrixhs.filters import EventFilter, Filter, RoomEventFilter, RoomFilter
from matrixhs.testing import MatrixTestCase
from sync.filters import do_create_filter, load_filter


class FilterParseTests(SimpleTestCase):
    def test_defaults(self) -> None:
        parsed = Filter.parse({})
        self.assertEqual(parsed, Filter())
        self.assertEqual((parsed.event_format, parsed.event_fields), ("client", None))
        self.assertEqual(parsed.room, RoomFilter())
        self.assertFalse(parsed.room.include_leave)

    def test_sections(self) -> None:
        parsed = Filter.parse(
            {
                "event_format": "federation",
                "presence": {"limit": 3, "not_senders": ["@x:y"]},
                "account_data": {"types": ["m.*"]},
                "room": {
                    "rooms": ["!a:b"],
                    "not_rooms": ["!c:d"],
                    "include_leave": True,
                    "timeline": {"limit": 5, "lazy_load_members": True},
                    "ephemeral": {"not_types": ["m.typing"]},
                },
            }
        )
        self.assertEqual(parsed.event_format, "federation")
        self.assertEqual(parsed.presence, EventFilter(limit=3, not_senders=["@x:y"]))
        self.assertEqual(parsed.account_data.types, ["m.*"])
        self.assertEqual(parsed.room.timeline, RoomEventFilter(limit=5, lazy_load_members=True))
        self.assertEqual(parsed.room.ephemeral.not_types, ["m.typing"])
        self.assertTrue(parsed.room.include_leave)
        self.assertTrue(parsed.room.allows_room("!a:b"))
        self.assertFalse(parsed.room.allows_room("!c:d"))
        self.assertFalse(parsed.room.allows_room("!e:f"))

    def test_event_filter_matches_globs_and_senders(self) -> None:
        event_filter = EventFilter(types=["m.*"], not_types=["m.secret*"], not_senders=["@x:y"])
        self.assertTrue(event_filter.matches("m.presence", "@a:b"))
        self.assertFalse(event_filter.matches("m.secret.key", "@a:b"))
        self.assertFalse(event_filter.matches("org.other", "@a:b"))
        self.assertFalse(event_filter.matches("m.presence", "@x:y"))
        events = [
            {"type": "m.a", "sender": "@a:b"},
            {"type": "m.b", "sender": "@x:y"},
            {"type": "m.c", "sender": "@c:d"},
            {"type": "m.d", "sender": "@e:f"},
        ]
        self.assertEqual([e["type"] for e in EventFilter(limit=2).apply(events)], ["m.a", "m.b"])
        self.assertEqual([e["type"] for e in event_filter.apply(events)], ["m.a", "m.c", "m.d"])

    def test_room_event_filter_matches_events_in_memory(self) -> None:
        room_filter = RoomEventFilter(types=["m.typing"], not_rooms=["!no:x"])
        self.assertTrue(room_filter.matches({"type": "m.typing", "room_id": "!yes:x"}))
        self.assertFalse(room_filter.matches({"type": "m.typing", "room_id": "!no:x"}))
        self.assertFalse(room_filter.matches({"type": "m.receipt"}))
        with_url = RoomEventFilter(contains_url=True)
        self.assertTrue(with_url.matches({"type": "m.room.message", "content": {"url": "mxc://"}}))
        self.assertFalse(with_url.matches({"type": "m.room.message", "content": {}}))

    def test_event_fields_projection(self) -> None:
        event = {
            "type": "m.room.message",
            "sender": "@a:b",
            "event_id": "$e",
            "content": {"body": "hi", "m.relates_to": {"rel_type": "m.thread"}},
        }
        parsed = Filter.parse(
            {
                "event_fields": [
                    "type",
                    "content.body",
                    "content.m\\.relates_to.rel_type",
                    "unsigned.age",
                ]
            }
        )
        self.assertEqual(
            parsed.project(event),
            {
                "type": "m.room.message",
                "content": {"body": "hi", "m.relates_to": {"rel_type": "m.thread"}},
            },
        )
        self.assertIs(Filter().project(event), event)


class LoadFilterTests(MatrixTestCase):
    def assert_error(self, raw: str, status: int, errcode: str) -> None:
        with self.assertRaises(MatrixError) as caught:
            load_filter(self.alice, raw)
        self.assertEqual((caught.exception.status, caught.exception.errcode), (status, errcode))

    def test_absent_is_the_default_filter(self) -> None:
        self.assertEqual(load_filter(self.alice, None), Filter())
        self.assertEqual(load_filter(self.alice, ""), Filter())

    def test_inline_json(self) -> None:
        parsed = load_filter(self.alice, json.dumps({"room": {"timeline": {"limit": 4}}}))
        self.assertEqual(parsed.room.timeline.limit, 4)
        self.assert_error("{not json", 400, "M_NOT_JSON")
        self.assert_error('{"room": {"timeline": {"limit": 0}}}', 400, "M_BAD_JSON")

    def test_stored_filter_of_the_user(self) -> None:
        filter_id = do_create_filter(self.alice, {"presence": {"types": []}})
        self.assertEqual(load_filter(self.alice, filter_id).presence.types, [])
        self.assert_error("99", 400, "M_INVALID_PARAM")
        with self.assertRaises(MatrixError):
            load_filter(self.bob, filter_id)
