"""POST /user_directory/search: whom it finds, by which words, kept up to date by profile
and membership changes."""

from __future__ import annotations

import io
from typing import Any

from django.core.management import call_command

from accounts.models import User
from rooms.actions.user_directory import words_of
from rooms.models import UserDirectoryEntry, UserDirectoryWord
from rooms.queries.user_directory import search_users
from rooms.tests.base import V3, RoomTestCase, q

URL = f"{V3}/user_directory/search"


class UserDirectorySearchTests(RoomTestCase):
    def found(self, searcher: User, term: str, **body: Any) -> list[str]:
        response = self.api(searcher).post(URL, {"search_term": term, **body})
        self.assertEqual(response.status_code, 200, response.body)
        return [r["user_id"] for r in response.body["results"]]

    def set_name(self, user: User, name: str) -> None:
        path = f"{V3}/profile/{q(user.user_id)}/displayname"
        self.assertEqual(self.api(user).put(path, {"displayname": name}).status_code, 200)

    def shared_private_room(self) -> str:
        room = self.create_room(self.alice)
        self.invite(self.alice, room, self.bob)
        self.join(self.bob, room)
        return room

    def test_a_display_name_set_after_joining_is_found(self) -> None:
        self.shared_private_room()
        self.set_name(self.bob, "Roberto Zanzibar")
        self.assertEqual(self.found(self.alice, "zanzi"), [self.bob.user_id])
        self.set_name(self.bob, "Plain Bob")
        self.assertEqual(self.found(self.alice, "zanzi"), [])
        response = self.api(self.alice).post(URL, {"search_term": "plain"}).body
        self.assertEqual(
            response["results"], [{"user_id": self.bob.user_id, "display_name": "Plain Bob"}]
        )

    def test_every_word_must_begin_a_word_of_the_name_or_id(self) -> None:
        self.shared_private_room()
        self.set_name(self.bob, "Alice-Marie Smith")
        self.assertEqual(self.found(self.alice, "SMI alice"), [self.bob.user_id])
        self.assertEqual(self.found(self.alice, "mar"), [self.bob.user_id])
        self.assertEqual(self.found(self.alice, "mith"), [])
        self.assertEqual(self.found(self.alice, "smith jones"), [])
        self.assertEqual(self.found(self.alice, "@bob:test"), [self.bob.user_id])
        self.assertEqual(self.found(self.alice, "  "), [])

    def test_leaving_the_only_shared_room_hides_the_user(self) -> None:
        room = self.shared_private_room()
        self.assertEqual(self.found(self.alice, "bob"), [self.bob.user_id])
        self.leave(self.bob, room)
        self.assertEqual(self.found(self.alice, "bob"), [])
        self.assertFalse(UserDirectoryEntry.objects.filter(user_id=self.bob.user_id).exists())

    def test_members_of_a_room_are_found_while_it_is_public(self) -> None:
        room = self.create_room(self.bob, preset="public_chat")
        self.assertEqual(self.found(self.mallory, "bob"), [self.bob.user_id])
        self.set_state(self.bob, room, "m.room.join_rules", {"join_rule": "invite"})
        self.assertEqual(self.found(self.mallory, "bob"), [])
        self.set_state(
            self.bob, room, "m.room.history_visibility", {"history_visibility": "world_readable"}
        )
        self.assertEqual(self.found(self.mallory, "bob"), [self.bob.user_id])

    def test_exact_matches_come_first_and_limit_says_when_more(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        for name, display in (("amy", "Zed"), ("zed", None), ("zedekiah", "Zedekiah")):
            user = self.make_user(name, displayname=display)
            self.join(user, room)
        self.assertEqual(
            self.found(self.bob, "zed"),
            ["@amy:test.local", "@zed:test.local", "@zedekiah:test.local"],
        )
        response = self.api(self.bob).post(URL, {"search_term": "zed", "limit": 2}).body
        self.assertEqual(len(response["results"]), 2)
        self.assertIs(response["limited"], True)

    def test_avatar_is_returned(self) -> None:
        self.shared_private_room()
        path = f"{V3}/profile/{q(self.bob.user_id)}/avatar_url"
        self.api(self.bob).put(path, {"avatar_url": "mxc://test.local/abc"})
        [result] = self.api(self.alice).post(URL, {"search_term": "bob"}).body["results"]
        self.assertEqual(result["avatar_url"], "mxc://test.local/abc")

    def test_a_search_is_one_query(self) -> None:
        self.shared_private_room()
        with self.assertNumQueries(1):
            body = search_users(self.alice.user_id, "bob test", 10)
        self.assertEqual([r["user_id"] for r in body["results"]], [self.bob.user_id])

    def test_rebuild_makes_the_same_index(self) -> None:
        self.shared_private_room()
        self.create_room(self.mallory, preset="public_chat")
        self.set_name(self.mallory, "Mal Content")

        def snapshot() -> set[tuple[Any, ...]]:
            entries = set(
                UserDirectoryEntry.objects.values_list(
                    "user_id", "display_name", "in_open_room", "name_key", "localpart_key"
                )
            )
            words = set(UserDirectoryWord.objects.values_list("entry__user_id", "word"))
            return entries | words

        before = snapshot()
        UserDirectoryEntry.objects.all().delete()
        out = io.StringIO()
        call_command("rebuild_user_directory", stdout=out)
        self.assertEqual(out.getvalue().strip(), "3 user(s) in the directory.")
        self.assertEqual(snapshot(), before)
        self.assertIn(("@mallory:test.local", "content"), before)

    def test_words_of(self) -> None:
        self.assertEqual(words_of("@Bob.S:Example.org"), ["bob", "s", "example", "org"])
        self.assertEqual(words_of("Ünïcode Name_x"), ["ünïcode", "name", "x"])
