"""Two users in Element Web against the real server: registration through Element's
own form, a room, an invite, messages, a reaction and an edit, an encrypted room, and a
profile change (display name and avatar) that the other user sees."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from PIL import Image
from playwright.sync_api import Page

from tests.browser import element
from tests.e2e.server import RunningServer


def events_as_stored(server: RunningServer, username: str, room_id: str) -> list[dict]:
    """The room's recent events as the server holds them (a new login of ``username``)."""
    login = httpx.post(
        f"{server.base_url}/_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": username},
            "password": element.PASSWORD,
        },
    ).json()
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    response = httpx.get(
        f"{server.base_url}/_matrix/client/v3/rooms/{room_id}/messages?dir=b&limit=50",
        headers=headers,
    )
    return list(response.json()["chunk"])


def test_two_users_talk_in_element(
    homeserver: RunningServer, element_url: str, new_page: Callable[[str], Page], tmp_path: Path
) -> None:
    alice, bob = new_page("alice"), new_page("bob")
    element.register(alice, element_url, "alice")
    element.register(bob, element_url, "bob")

    # An unencrypted room: invite, accept, messages both ways, a reaction, an edit.
    element.create_room(alice, "Plain talk", encrypted=False)
    element.invite(alice, "@bob:localhost")
    element.accept_invite(bob, "Plain talk")
    element.send(bob, "Hello from Bob")
    element.message(alice, "Hello from Bob").wait_for()
    element.send(alice, "Hi Bob, Alice here")
    element.message(bob, "Hi Bob, Alice here").wait_for()
    element.react_with_thumbs_up(bob, "Hi Bob, Alice here")
    reaction = element.message(alice, "Hi Bob, Alice here").get_by_role(
        "button", name="bob reacted with 👍️"
    )
    reaction.wait_for()
    element.edit(alice, "Hi Bob, Alice here", "Hi Bob, Alice speaking")
    edited = element.message(bob, "Hi Bob, Alice speaking")
    edited.get_by_text("(edited)").wait_for()

    # An encrypted room: the server only ever sees m.room.encrypted.
    secret_room = element.create_room(alice, "Secret plans", encrypted=True)
    element.invite(alice, "@bob:localhost")
    element.accept_invite(bob, "Secret plans")
    element.send(bob, "The cake is in the fridge")
    element.message(alice, "The cake is in the fridge").wait_for()
    element.send(alice, "Keep it a secret")
    element.message(bob, "Keep it a secret").wait_for()
    element.react_with_thumbs_up(alice, "The cake is in the fridge")
    element.message(bob, "The cake is in the fridge").get_by_role(
        "button", name="alice reacted with 👍️"
    ).wait_for()
    element.edit(bob, "The cake is in the fridge", "The cake is on the table")
    element.message(alice, "The cake is on the table").get_by_text("(edited)").wait_for()
    stored = events_as_stored(homeserver, "alice", secret_room)
    messages = [e for e in stored if e["type"] in ("m.room.message", "m.room.encrypted")]
    assert len(messages) >= 3, stored  # two messages and the edit
    assert {e["type"] for e in messages} == {"m.room.encrypted"}
    assert "cake" not in str(stored)

    # Bob's new name and avatar reach Alice, in both rooms.
    element.set_display_name(bob, "Robert Tables")
    element.message(alice, "bob changed their display name to Robert Tables").wait_for()
    element.open_room(alice, "Plain talk")
    element.message(alice, "bob changed their display name to Robert Tables").wait_for()
    avatar = tmp_path / "avatar.png"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(avatar)
    element.set_avatar(bob, str(avatar))
    element.message(alice, "Robert Tables set a profile picture").wait_for()
    shown = (
        element.message(alice, "Robert Tables set a profile picture")
        .locator("img[src*='/_matrix/']")
        .first
    )
    shown.wait_for()
    alice.wait_for_function(
        "image => image.complete && image.naturalWidth > 0", arg=shown.element_handle()
    )
