"""Steps of a user in Element Web v1.11.88, found by the labels Element shows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page

PASSWORD = "a long enough passphrase 42"


def register(page: Page, element_url: str, username: str) -> None:
    """Create an account on the registration page (the server's dummy flow)."""
    dismiss_prompts(page)
    page.goto(f"{element_url}/#/register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    home = page.get_by_role("button", name="Start your first chat")
    skip = page.get_by_role("button", name="Skip")  # the use-case screen, when shown
    home.or_(skip).first.wait_for()
    if skip.is_visible():
        skip.click()
        home.wait_for()


def dismiss_prompts(page: Page) -> None:
    """Close, whenever they show up in the way, the toasts that ask to set up key backup,
    notifications or verification, and the threads hint: Playwright runs these handlers
    before any step that they would block. None of them is part of what is tested."""
    closers = page.locator(".mx_ToastContainer").get_by_role(
        "button", name=re.compile(r"^(Later|Dismiss|Not now)$")
    )
    # One toast may follow another (they queue): no waiting for the button to go.
    page.add_locator_handler(closers.first, _click_if_still_there, no_wait_after=True)
    hint = page.get_by_role("dialog").filter(has_text="Threads Activity Centre")
    page.add_locator_handler(
        hint, lambda dialog: _click_if_still_there(dialog.get_by_role("button", name="OK"))
    )


def _click_if_still_there(button: Locator) -> None:
    """A toast may be replaced by the next one between being seen and being clicked."""
    try:
        button.click(timeout=2000)
    except PlaywrightError:
        pass


def create_room(page: Page, name: str, *, encrypted: bool) -> str:
    """Create a private room; returns its room ID (from Element's address bar)."""
    page.get_by_role("button", name="Add", exact=True).first.click()
    page.get_by_role("menuitem", name="New room").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name", exact=True).fill(name)
    switch = dialog.get_by_role("switch")
    if (switch.get_attribute("aria-checked") == "true") != encrypted:
        switch.click()
    dialog.get_by_role("button", name="Create room").click()
    page.get_by_role("button", name="Invite to this room").wait_for()
    page.wait_for_url(re.compile(r"#/room/!"))
    return unquote(page.url.split("#/room/", 1)[1])


def invite(page: Page, user_id: str) -> None:
    page.get_by_role("button", name="Invite to this room").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox").fill(user_id)
    dialog.get_by_text(user_id).click()
    dialog.get_by_role("button", name="Invite").click()
    dialog.wait_for(state="hidden")


def accept_invite(page: Page, room_name: str) -> None:
    page.get_by_role("treeitem", name=room_name).click()
    page.get_by_role("button", name="Accept").click()
    composer(page).wait_for()


def open_room(page: Page, room_name: str) -> None:
    page.get_by_role("treeitem", name=room_name).click()
    composer(page).wait_for()


def composer(page: Page) -> Locator:
    return page.get_by_role("textbox", name=re.compile(r"^Send (a|an encrypted) message"))


def send(page: Page, text: str) -> None:
    box = composer(page)
    box.fill(text)
    box.press("Enter")


def message(page: Page, text: str) -> Locator:
    """The timeline tile that shows ``text``."""
    return page.locator(".mx_RoomView_timeline .mx_EventTile", has_text=text).last


def react_with_thumbs_up(page: Page, text: str) -> None:
    tile = message(page, text)
    tile.hover()
    tile.get_by_role("button", name="React").click()
    quick = page.get_by_role("toolbar", name="Quick Reactions")
    quick.get_by_role("button").first.click()  # 👍️, the first quick reaction
    quick.wait_for(state="hidden")


def edit(page: Page, text: str, new_text: str) -> None:
    tile = message(page, text)
    tile.hover()
    tile.get_by_role("button", name="Edit").click()
    editor = page.get_by_role("textbox", name="Edit message")
    editor.press("Control+a")
    editor.press_sequentially(new_text)
    editor.press("Enter")
    editor.wait_for(state="hidden")


@contextmanager
def _profile_saved(page: Page, field: str) -> Iterator[None]:
    """Wait for Element's ``PUT /profile/{userId}/{field}``, which must succeed."""
    with page.expect_response(
        lambda r: r.request.method == "PUT" and r.url.endswith(f"/{field}")
    ) as response:
        yield
    assert response.value.ok, response.value.text()


def open_settings(page: Page) -> Locator:
    page.get_by_role("button", name="User menu").click()
    page.get_by_role("menuitem", name="All settings").click()
    return page.get_by_role("dialog")


def set_display_name(page: Page, name: str) -> None:
    settings = open_settings(page)
    field = settings.get_by_label("Display Name")
    field.fill(name)
    with _profile_saved(page, "displayname"):
        field.press("Enter")  # the profile form's submit (its Save button)
    settings.get_by_role("button", name="Close dialog").click()


def set_avatar(page: Page, image_path: str) -> None:
    settings = open_settings(page)
    settings.locator(".mx_AvatarSetting_avatarDisplay").click()
    with page.expect_file_chooser() as chooser:
        page.get_by_role("menuitem", name="Upload file").click()
    with _profile_saved(page, "avatar_url"):
        chooser.value.set_files(image_path)
    settings.locator("img.mx_AvatarSetting_avatarDisplay").wait_for()
    settings.get_by_role("button", name="Close dialog").click()
