"""POST /search: the room_events category (responses checked against the spec)."""

from __future__ import annotations

import base64
import importlib
from typing import Any

from django.apps import apps as django_apps
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from matrixhs.protocol.events import EventTypes
from rooms.events import persist_federated_event, persist_outliers
from rooms.models import Event, EventSearch, Room
from rooms.tests.base import V3, RoomTestCase, q
from rooms.tests.remote import RemoteServer

URL = f"{V3}/search"


class SearchTestCase(RoomTestCase):
    def search(
        self, user: User, term: str, next_batch: str | None = None, **criteria: Any
    ) -> dict[str, Any]:
        response = self.search_response(user, term, next_batch, **criteria)
        self.assertEqual(response.status_code, 200, response.body)
        body: dict[str, Any] = response.body["search_categories"]["room_events"]
        return body

    def search_response(
        self, user: User, term: str, next_batch: str | None = None, **criteria: Any
    ) -> Any:
        url = URL if next_batch is None else f"{URL}?next_batch={q(next_batch)}"
        body = {"search_categories": {"room_events": {"search_term": term, **criteria}}}
        return self.api(user).post(url, body)

    def found(self, user: User, term: str, **criteria: Any) -> list[str]:
        return [r["result"]["event_id"] for r in self.search(user, term, **criteria)["results"]]


class SearchMatchTests(SearchTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(
            self.alice, preset="public_chat", name="Gardening club", topic="Tomatoes galore"
        )
        self.join(self.bob, self.room)

    def test_message_body_is_found_with_its_room_and_rank(self) -> None:
        event_id = self.send_ok(self.alice, self.room, "the zucchini harvest was huge")
        self.send_ok(self.alice, self.room, "nothing to see here")
        body = self.search(self.bob, "zucchini")
        self.assertEqual([r["result"]["event_id"] for r in body["results"]], [event_id])
        result = body["results"][0]
        self.assertEqual(result["result"]["room_id"], self.room)
        self.assertEqual(result["result"]["content"]["body"], "the zucchini harvest was huge")
        self.assertGreater(result["rank"], 0)
        self.assertEqual(body["count"], 1)
        self.assertEqual(body["highlights"], ["zucchini"])
        self.assertNotIn("next_batch", body)

    def test_stemmed_forms_match(self) -> None:
        event_id = self.send_ok(self.alice, self.room, "we were planting carrots")
        self.assertEqual(self.found(self.bob, "plant carrot"), [event_id])

    def test_every_word_must_match(self) -> None:
        both = self.send_ok(self.alice, self.room, "red apples and green pears")
        self.send_ok(self.alice, self.room, "red cars")
        self.assertEqual(self.found(self.bob, "red pears"), [both])

    def test_or_phrases_and_exclusions(self) -> None:
        apples = self.send_ok(self.alice, self.room, "sweet apples")
        pears = self.send_ok(self.alice, self.room, "sweet pears")
        self.send_ok(self.alice, self.room, "pears are sweet")
        self.assertEqual(
            set(self.found(self.bob, "apples or pears", order_by="recent")),
            {apples, pears} | set(self.found(self.bob, '"are sweet"')),
        )
        self.assertEqual(self.found(self.bob, '"sweet pears"'), [pears])
        self.assertEqual(self.found(self.bob, "sweet -pears"), [apples])

    def test_room_name_and_topic_are_searched_by_key(self) -> None:
        message = self.send_ok(self.alice, self.room, "tomatoes in the club")
        everything = self.search(self.bob, "tomatoes")["results"]
        types = {r["result"]["type"] for r in everything}
        self.assertEqual(types, {"m.room.message", "m.room.topic"})
        self.assertEqual(self.found(self.bob, "tomatoes", keys=["content.body"]), [message])
        topic = self.found(self.bob, "tomatoes", keys=["content.topic"])
        self.assertEqual(len(topic), 1)
        self.assertNotEqual(topic, [message])
        name = self.search(self.bob, "gardening", keys=["content.name"])["results"]
        self.assertEqual([r["result"]["type"] for r in name], ["m.room.name"])
        self.assertEqual(self.found(self.bob, "gardening", keys=["content.body"]), [])

    def test_punctuation_and_query_syntax_are_plain_text(self) -> None:
        event_id = self.send_ok(self.alice, self.room, "deploy NEAR(prod) AND staging* ok")
        self.assertEqual(self.found(self.bob, 'NEAR(prod) "staging'), [event_id])
        self.assertEqual(self.found(self.bob, "* ^ : ( -"), [])

    def test_empty_term_finds_nothing(self) -> None:
        self.send_ok(self.alice, self.room, "something")
        body = self.search(self.bob, "")
        self.assertEqual((body["results"], body["count"]), ([], 0))

    def test_edits_and_non_text_events_are_not_double_counted(self) -> None:
        self.send_ok(self.alice, self.room, event_type="m.reaction", content={"key": "marigold"})
        self.send_ok(
            self.alice,
            self.room,
            event_type="m.room.message",
            content={"msgtype": "m.text", "body": 5},
        )
        self.assertEqual(self.found(self.bob, "marigold"), [])


class SearchFilterTests(SearchTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.first = self.create_room(self.alice, preset="public_chat")
        self.second = self.create_room(self.alice, preset="public_chat")
        for room in (self.first, self.second):
            self.join(self.bob, room)
        self.a1 = self.send_ok(self.alice, self.first, "kiwi from alice")
        self.b1 = self.send_ok(self.bob, self.first, "kiwi from bob")
        self.a2 = self.send_ok(self.alice, self.second, "kiwi in second")
        self.image = self.send_ok(
            self.bob,
            self.second,
            content={"msgtype": "m.image", "body": "kiwi photo", "url": "mxc://test.local/abc"},
        )
        self.notice = self.send_ok(
            self.alice,
            self.second,
            event_type="org.example.kiwi",
            content={"body": "kiwi custom"},
        )

    def kiwi(self, **event_filter: Any) -> set[str]:
        return set(self.found(self.bob, "kiwi", filter=event_filter, order_by="recent"))

    def test_rooms_and_not_rooms(self) -> None:
        self.assertEqual(self.kiwi(rooms=[self.first]), {self.a1, self.b1})
        self.assertEqual(self.kiwi(not_rooms=[self.first]), {self.a2, self.image})
        self.assertEqual(self.kiwi(rooms=[self.first], not_rooms=[self.first]), set())

    def test_senders_and_not_senders(self) -> None:
        self.assertEqual(self.kiwi(senders=[self.bob.user_id]), {self.b1, self.image})
        self.assertEqual(self.kiwi(not_senders=[self.bob.user_id]), {self.a1, self.a2})

    def test_types_and_not_types(self) -> None:
        everything = {self.a1, self.b1, self.a2, self.image}
        self.assertEqual(self.kiwi(types=["m.room.*"]), everything)
        self.assertEqual(self.kiwi(types=["m.room.topic"]), set())
        self.assertEqual(self.kiwi(not_types=["m.room.message"]), set())
        self.assertEqual(self.kiwi(types=[]), set())
        self.assertEqual(self.kiwi(not_types=[]), everything)

    def test_contains_url(self) -> None:
        self.assertEqual(self.kiwi(contains_url=True), {self.image})
        self.assertEqual(self.kiwi(contains_url=False), {self.a1, self.b1, self.a2})

    def test_limit_sets_the_page_size(self) -> None:
        body = self.search(self.bob, "kiwi", filter={"limit": 3})
        self.assertEqual(len(body["results"]), 3)
        self.assertEqual(body["count"], 4)
        self.assertIn("next_batch", body)

    def test_only_indexed_types_are_searched(self) -> None:
        self.assertNotIn(self.notice, self.kiwi())


class SearchOrderAndPagingTests(SearchTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(self.alice)
        self.sent = [self.send_ok(self.alice, self.room, f"walnut number {i}") for i in range(23)]

    def all_pages(self, **criteria: Any) -> list[list[str]]:
        pages, next_batch = [], None
        while True:
            body = self.search(self.alice, "walnut", next_batch, filter={"limit": 5}, **criteria)
            self.assertEqual(body["count"], 23)
            pages.append([r["result"]["event_id"] for r in body["results"]])
            next_batch = body.get("next_batch")
            if next_batch is None:
                return pages
            self.assertLess(len(pages), 10)

    def test_recent_pages_newest_first_without_repeats(self) -> None:
        pages = self.all_pages(order_by="recent")
        self.assertEqual([len(p) for p in pages], [5, 5, 5, 5, 3])
        self.assertEqual([e for p in pages for e in p], list(reversed(self.sent)))

    def test_a_full_last_page_has_a_next_batch_to_an_empty_page(self) -> None:
        # 23 matches in pages of 23: the full page still gives a next_batch (as
        # Synapse does, and Complement's back-pagination test expects); the page it
        # leads to is empty and has none.
        body = self.search(self.alice, "walnut", filter={"limit": 23}, order_by="recent")
        self.assertEqual(len(body["results"]), 23)
        rest = self.search(
            self.alice, "walnut", body["next_batch"], filter={"limit": 23}, order_by="recent"
        )
        self.assertEqual(rest["results"], [])
        self.assertNotIn("next_batch", rest)

    def test_rank_puts_closer_matches_first_and_pages_without_repeats(self) -> None:
        close = self.send_ok(self.alice, self.room, "walnut walnut walnut")
        self.sent.append(close)
        pages, next_batch = [], None
        while True:
            body = self.search(self.alice, "walnut", next_batch, filter={"limit": 4})
            pages.append(body["results"])
            next_batch = body.get("next_batch")
            if next_batch is None:
                break
        results = [r for p in pages for r in p]
        ids = [r["result"]["event_id"] for r in results]
        self.assertEqual(ids[0], close)
        self.assertEqual(sorted(ids), sorted(self.sent))
        ranks = [r["rank"] for r in results]
        self.assertEqual(ranks, sorted(ranks, reverse=True))

    def test_events_sent_after_the_first_page_stay_out(self) -> None:
        body = self.search(self.alice, "walnut", filter={"limit": 20}, order_by="recent")
        late = self.send_ok(self.alice, self.room, "walnut late")
        rest = self.search(self.alice, "walnut", body["next_batch"], order_by="recent")
        self.assertNotIn(late, [r["result"]["event_id"] for r in rest["results"]])
        self.assertEqual(len(rest["results"]), 3)
        self.assertEqual(rest["count"], 23)

    def test_bad_next_batch_is_invalid_param(self) -> None:
        tokens = [
            "nope!",
            "x" * 3,
            *(
                base64.urlsafe_b64encode(raw.encode()).decode()
                for raw in (
                    "{}",
                    "[]",
                    '{"u": "a"}',
                    '{"u": 1, "s": "1"}',
                    '{"u": 1, "s": 1, "r": NaN}',
                    '{"u": 1, "s": 1, "r": true}',
                    '{"u": 1e400}',
                    '{"u": 99999999999999999999999}',
                    '{"u": 1, "g": ["sender", "not a user"]}',
                    '{"u": 1, "g": ["sender", "@a:b\\u0000"]}',
                    '{"u": 1, "g": ["type", "m.room.message"]}',
                    '{"u": 1, "g": ["room_id"]}',
                )
            ),
        ]
        for token in tokens:
            with self.subTest(token=token):
                response = self.search_response(self.alice, "walnut", token)
                self.assert_matrix_error(response, 400, "M_INVALID_PARAM")


class SearchContextAndGroupTests(SearchTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, self.room)
        self.api(self.bob).put(
            f"{V3}/profile/{q(self.bob.user_id)}/displayname", {"displayname": "Bobby"}
        )
        self.before = [self.send_ok(self.bob, self.room, f"chatter {i}") for i in range(3)]
        self.hit = self.send_ok(self.alice, self.room, "the pistachio question")
        self.after = [self.send_ok(self.bob, self.room, f"more chatter {i}") for i in range(3)]

    def test_context_has_the_events_around_and_tokens(self) -> None:
        body = self.search(
            self.bob, "pistachio", event_context={"before_limit": 2, "after_limit": 1}
        )
        context = body["results"][0]["context"]
        self.assertEqual(
            [e["event_id"] for e in context["events_before"]], list(reversed(self.before))[:2]
        )
        self.assertEqual([e["event_id"] for e in context["events_after"]], self.after[:1])
        self.assertNotIn("profile_info", context)
        page = self.messages(self.bob, self.room, f"dir=b&limit=1&from={q(context['start'])}")
        self.assertEqual([e["event_id"] for e in page.body["chunk"]], [self.before[0]])

    def test_context_profiles_of_senders(self) -> None:
        body = self.search(self.bob, "pistachio", event_context={"include_profile": True})
        profiles = body["results"][0]["context"]["profile_info"]
        self.assertEqual(profiles[self.bob.user_id], {"displayname": "Bobby"})
        self.assertEqual(profiles[self.alice.user_id], {"displayname": "alice"})

    def test_groups_by_room_and_sender(self) -> None:
        other = self.create_room(self.bob)
        elsewhere = self.send_ok(self.bob, other, "pistachio ice cream")
        grouping = {"group_by": [{"key": "room_id"}, {"key": "sender"}]}
        body = self.search(self.bob, "pistachio", groupings=grouping, order_by="recent")
        rooms, senders = body["groups"]["room_id"], body["groups"]["sender"]
        self.assertEqual(rooms[other]["results"], [elsewhere])
        self.assertEqual(rooms[self.room]["results"], [self.hit])
        self.assertEqual((rooms[other]["order"], rooms[self.room]["order"]), (0, 1))
        self.assertEqual(senders[self.alice.user_id]["results"], [self.hit])
        self.assertEqual(senders[self.bob.user_id]["results"], [elsewhere])

    def test_group_next_batch_pages_within_the_group(self) -> None:
        other = self.create_room(self.bob)
        for i in range(3):
            self.send_ok(self.bob, other, f"pistachio {i}")
        body = self.search(
            self.bob,
            "pistachio",
            filter={"limit": 2},
            order_by="recent",
            groupings={"group_by": [{"key": "room_id"}]},
        )
        token = body["groups"]["room_id"][other]["next_batch"]
        rest = self.search(self.bob, "pistachio", token, order_by="recent")
        self.assertEqual({r["result"]["room_id"] for r in rest["results"]}, {other})
        self.assertEqual(len(rest["results"]), 1)

    def test_sender_group_next_batch_pages_within_the_sender(self) -> None:
        for i in range(3):
            self.send_ok(self.bob, self.room, f"pistachio from bob {i}")
        grouping = {"group_by": [{"key": "sender"}]}
        body = self.search(
            self.bob, "pistachio", filter={"limit": 2}, order_by="recent", groupings=grouping
        )
        token = body["groups"]["sender"][self.bob.user_id]["next_batch"]
        rest = self.search(self.bob, "pistachio", token, order_by="recent")
        self.assertEqual(
            [r["result"]["content"]["body"] for r in rest["results"]], ["pistachio from bob 0"]
        )
        # The group's token keeps the filter: a sender it leaves out gives nothing.
        only_alice = {"senders": [self.alice.user_id]}
        rest = self.search(self.bob, "pistachio", token, order_by="recent", filter=only_alice)
        self.assertEqual(rest["results"], [])

    def test_include_state_gives_the_state_of_result_rooms(self) -> None:
        body = self.search(self.bob, "pistachio", include_state=True)
        state = body["state"][self.room]
        self.assertIn("m.room.create", {e["type"] for e in state})
        self.assertEqual(set(body["state"]), {self.room})


class SearchVisibilityTests(SearchTestCase):
    def test_nothing_after_leaving(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        seen = self.send_ok(self.alice, room, "hazelnut before the leave")
        self.assertEqual(self.leave(self.bob, room).status_code, 200)
        self.send_ok(self.alice, room, "hazelnut after the leave")
        self.assertEqual(self.found(self.bob, "hazelnut"), [seen])
        context = self.search(self.bob, "hazelnut", event_context={"after_limit": 5})
        after = context["results"][0]["context"]["events_after"]
        self.assertNotIn("hazelnut after the leave", [e["content"].get("body") for e in after])

    def test_joined_visibility_hides_what_came_before_joining(self) -> None:
        room = self.create_room(
            self.alice,
            preset="public_chat",
            initial_state=[
                {
                    "type": "m.room.history_visibility",
                    "content": {"history_visibility": "joined"},
                }
            ],
        )
        self.send_ok(self.alice, room, "almond secret")
        self.join(self.bob, room)
        later = self.send_ok(self.alice, room, "almond public")
        self.assertEqual(self.found(self.bob, "almond"), [later])
        self.assertEqual(len(self.found(self.alice, "almond")), 2)

    def test_shared_visibility_shows_history_from_before_joining(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        earlier = self.send_ok(self.alice, room, "pecan history")
        self.join(self.bob, room)
        self.assertEqual(self.found(self.bob, "pecan"), [earlier])

    def test_never_joined_room_gives_nothing(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.send_ok(self.alice, room, "cashew open to all")
        self.assertEqual(self.found(self.mallory, "cashew"), [])
        self.invite(self.alice, room, self.mallory)
        self.assertEqual(self.found(self.mallory, "cashew"), [])
        self.assertEqual(self.found(self.mallory, "cashew", filter={"rooms": [room]}), [])

    def test_encrypted_events_are_not_indexed(self) -> None:
        room = self.create_room(self.alice)
        self.send_ok(
            self.alice,
            room,
            event_type="m.room.encrypted",
            content={
                "algorithm": "m.megolm.v1.aes-sha2",
                "ciphertext": "macadamia",
                "body": "macadamia",
                "device_id": "D",
                "sender_key": "k",
                "session_id": "s",
            },
        )
        self.assertEqual(self.found(self.alice, "macadamia"), [])
        self.assertFalse(EventSearch.objects.filter(value__contains="macadamia").exists())

    def test_redaction_removes_from_the_index(self) -> None:
        room = self.create_room(self.alice)
        event_id = self.send_ok(self.alice, room, "chestnut oops")
        self.assertEqual(self.found(self.alice, "chestnut"), [event_id])
        response = self.api(self.alice).put(f"{V3}/rooms/{q(room)}/redact/{q(event_id)}/r1", {})
        self.assertEqual(response.status_code, 200, response.body)
        self.assertEqual(self.found(self.alice, "chestnut"), [])
        self.assertFalse(EventSearch.objects.filter(event__event_id=event_id).exists())


class SearchBadInputTests(SearchTestCase):
    def post(self, body: Any) -> Any:
        return self.api(self.alice).post(URL, body)

    def test_bad_bodies(self) -> None:
        cases: list[tuple[Any, str]] = [
            ({}, "M_MISSING_PARAM"),
            ({"search_categories": []}, "M_BAD_JSON"),
            ({"search_categories": {"room_events": {}}}, "M_MISSING_PARAM"),
            ({"search_categories": {"room_events": {"search_term": 1}}}, "M_BAD_JSON"),
            ({"search_categories": {"unknown": {"search_term": "x"}}}, "M_BAD_JSON"),
        ]
        criteria: list[dict[str, Any]] = [
            {"order_by": "oldest"},
            {"keys": ["content.url"]},
            {"keys": "content.body"},
            {"filter": []},
            {"filter": {"limit": 0}},
            {"filter": {"rooms": ["not a room"]}},
            {"filter": {"senders": [1]}},
            {"filter": {"contains_url": "yes"}},
            {"event_context": {"before_limit": -1}},
            {"event_context": {"include_profile": 1}},
            {"groupings": {"group_by": [{"key": "type"}]}},
            {"groupings": {"group_by": {}}},
            {"include_state": "true"},
        ]
        for extra in criteria:
            room_events = {"search_term": "x", **extra}
            cases.append(({"search_categories": {"room_events": room_events}}, "M_BAD_JSON"))
        for body, errcode in cases:
            with self.subTest(body=body):
                self.assert_matrix_error(self.post(body), 400, errcode)

    def test_long_and_odd_terms_are_no_error(self) -> None:
        room = self.create_room(self.alice)
        self.send_ok(self.alice, room, "word1 here")
        long_or = " or ".join(f"word{i}" for i in range(3000))
        for term in (long_or, "-" * 5000, '"' * 999, "x" * 20000, "ÄÖÜ ß 漢字 🙂", "a:b & c|d!"):
            with self.subTest(term=term[:20]):
                self.assertIsInstance(self.search(self.alice, term)["results"], list)
        self.assertEqual(len(self.search(self.alice, long_or)["results"]), 1)

    def test_no_category_gives_no_results(self) -> None:
        response = self.post({"search_categories": {}})
        self.assertEqual((response.status_code, response.body), (200, {"search_categories": {}}))

    def test_needs_a_token(self) -> None:
        response = self.client.post(URL, {}, content_type="application/json")
        self.assertEqual(response.status_code, 401)


class SearchFederatedEventTests(SearchTestCase):
    """Events from other servers: only accepted timeline events are searchable."""

    def setUp(self) -> None:
        super().setUp()
        self.remote = RemoteServer()
        self.carol = self.remote.user("carol")
        self.room = self.create_room(self.alice, preset="public_chat")

    def remote_join(self) -> str:
        event_id, pdu = self.remote.event(
            self.room, EventTypes.MEMBER, self.carol, {"membership": "join"}, state_key=self.carol
        )
        self.assertTrue(persist_federated_event(self.room, event_id, pdu).accepted)
        return event_id

    def message(self, body: str, sender: str | None = None, **kw: Any) -> tuple[str, Any]:
        content = {"msgtype": "m.text", "body": body}
        return self.remote.event(self.room, "m.room.message", sender or self.carol, content, **kw)

    def test_accepted_remote_message_is_found(self) -> None:
        self.remote_join()
        event_id, pdu = self.message("brazil nut from afar")
        self.assertTrue(persist_federated_event(self.room, event_id, pdu).accepted)
        self.assertEqual(self.found(self.alice, "brazil"), [event_id])

    def test_rejected_event_is_not_found(self) -> None:
        event_id, pdu = self.message("brazil intruder")
        self.assertIsNotNone(persist_federated_event(self.room, event_id, pdu).rejected_reason)
        self.assertEqual(self.found(self.alice, "brazil"), [])

    def test_soft_failed_event_is_not_found(self) -> None:
        join_id = self.remote_join()
        ban = self.api(self.alice).post(f"{V3}/rooms/{q(self.room)}/ban", {"user_id": self.carol})
        self.assertEqual(ban.status_code, 200, ban.body)
        event_id, pdu = self.message("brazil sneaky", prev_events=[join_id])
        self.assertTrue(persist_federated_event(self.room, event_id, pdu).soft_failed)
        self.assertEqual(self.found(self.alice, "brazil"), [])

    def test_outlier_is_found_only_once_in_the_timeline(self) -> None:
        self.remote_join()
        event_id, pdu = self.message("brazil outlier")
        persist_outliers(self.room, [(event_id, pdu)])
        self.assertEqual(self.found(self.alice, "brazil"), [])
        self.assertTrue(persist_federated_event(self.room, event_id, pdu).accepted)
        self.assertEqual(self.found(self.alice, "brazil"), [event_id])

    def test_redaction_that_arrived_first_keeps_its_target_out(self) -> None:
        self.remote_join()
        target_id, target = self.message("brazil oops")
        redaction_id, redaction = self.remote.event(
            self.room,
            EventTypes.REDACTION,
            self.carol,
            {"redacts": target_id},
            prev_events=[target_id],
            redacts=target_id,
        )
        room = Room.objects.get(room_id=self.room)
        latest = Event.objects.filter(room=room).order_by("-stream_ordering")[0].event_id
        state = self.remote.state_after(room, [latest])
        persist_federated_event(self.room, redaction_id, redaction, state=state)
        self.assertTrue(persist_federated_event(self.room, target_id, target).accepted)
        self.assertEqual(self.found(self.alice, "brazil"), [])


class SearchIndexMigrationTests(SearchTestCase):
    def test_existing_events_are_indexed_by_the_migration(self) -> None:
        room = self.create_room(self.alice, topic="almond grove")
        kept = self.send_ok(self.alice, room, "brazil nut kept")
        gone = self.send_ok(self.alice, room, "brazil nut redacted")
        self.api(self.alice).put(f"{V3}/rooms/{q(room)}/redact/{q(gone)}/r1", {})
        self.send_ok(
            self.alice,
            room,
            event_type="m.room.encrypted",
            content={"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "x", "body": "brazil"},
        )
        before = set(EventSearch.objects.values_list("event_id", "key", "value"))
        EventSearch.objects.all().delete()
        self.assertEqual(self.found(self.alice, "brazil"), [])
        migration = importlib.import_module("rooms.migrations.0006_event_search")
        migration.index_existing_events(django_apps, None)
        self.assertEqual(set(EventSearch.objects.values_list("event_id", "key", "value")), before)
        self.assertEqual(self.found(self.alice, "brazil"), [kept])
        self.assertEqual(len(self.found(self.alice, "almond", keys=["content.topic"])), 1)


class SearchQueryCountTests(SearchTestCase):
    def test_page_size_does_not_add_queries(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        for i in range(12):
            self.send_ok(self.alice if i % 2 else self.bob, room, f"filbert {i}")
        criteria = {
            "event_context": {"before_limit": 2, "after_limit": 2, "include_profile": True},
            "groupings": {"group_by": [{"key": "room_id"}, {"key": "sender"}]},
        }

        def queries(limit: int) -> int:
            self.search(self.bob, "filbert", filter={"limit": limit}, **criteria)  # warm up
            with CaptureQueriesContext(connection) as captured:
                self.search(self.bob, "filbert", filter={"limit": limit}, **criteria)
            return len(captured.captured_queries)

        self.assertEqual(queries(2), queries(10))
