"""The operators' Django admin in the browser: an admin logs in, creates a registration
token (with which a new user then registers), finds that user and deactivates them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.server import ROOT, RunningServer

ADMIN_PASSWORD = "the admin's passphrase 7"
USER_PASSWORD = "carol's passphrase 8"


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose registration needs a token, with one admin, @root:localhost."""
    server = RunningServer(
        tmp_path_factory.mktemp("hs-token"), server_name="localhost", MATRIXHS_REGISTRATION="token"
    )
    server.start()
    try:
        command = ["register_user", "root", "--admin", "--password", ADMIN_PASSWORD, "--no-input"]
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *command],
            env=server.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        yield server
    finally:
        server.stop()


def register_with_token(server: RunningServer, username: str, token: str) -> httpx.Response:
    url = f"{server.base_url}/_matrix/client/v3/register"
    first = httpx.post(url, json={})
    assert first.status_code == 401, first.text
    assert {"stages": ["m.login.registration_token"]} in first.json()["flows"]
    auth = {
        "type": "m.login.registration_token",
        "token": token,
        "session": first.json()["session"],
    }
    return httpx.post(url, json={"username": username, "password": USER_PASSWORD, "auth": auth})


def test_admin_creates_a_token_and_deactivates_a_user(
    token_server: RunningServer, new_page: Callable[[str], Page]
) -> None:
    admin = new_page("admin")
    admin.goto(f"{token_server.base_url}/admin/")
    admin.get_by_label("Localpart").fill("root")
    admin.get_by_label("Password").fill(ADMIN_PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    admin.get_by_role("heading", name="Site administration").wait_for()

    # A registration token, made in the admin, lets one new user in.
    assert register_with_token(token_server, "carol", "welcome-friends").status_code == 401
    admin.get_by_role("row", name="Registration tokens").get_by_role("link", name="Add").click()
    admin.get_by_label("Token").fill("welcome-friends")
    admin.get_by_label("Uses allowed").fill("1")
    admin.get_by_role("button", name="Save", exact=True).click()
    admin.get_by_text("“welcome-friends” was added successfully").wait_for()
    registered = register_with_token(token_server, "carol", "welcome-friends")
    assert registered.status_code == 200, registered.text
    carol_token = registered.json()["access_token"]
    assert register_with_token(token_server, "dave", "welcome-friends").status_code == 401
    admin.reload()
    row = admin.locator("#result_list tbody tr", has_text="welcome-friends")
    expect(row.locator(".field-completed")).to_have_text("1")

    # The admin finds carol and deactivates her: her session ends, she cannot log in.
    admin.get_by_role("link", name="Users").first.click()
    admin.locator("#searchbar").fill("carol")
    admin.get_by_role("button", name="Search").click()
    rows = admin.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("@carol:localhost")
    rows.first.get_by_role("checkbox").check()
    admin.locator("select[name=action]").select_option(
        label="Deactivate the selected users (log out everywhere, for good)"
    )
    admin.get_by_role("button", name="Go").click()
    admin.get_by_text("Deactivated 1 user(s).").wait_for()
    expect(rows.first.locator(".field-is_active img")).to_have_attribute("alt", "False")

    whoami = httpx.get(
        f"{token_server.base_url}/_matrix/client/v3/account/whoami",
        headers={"Authorization": f"Bearer {carol_token}"},
    )
    assert whoami.status_code == 401
    assert whoami.json()["errcode"] == "M_UNKNOWN_TOKEN"
    login = httpx.post(
        f"{token_server.base_url}/_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "carol"},
            "password": USER_PASSWORD,
        },
    )
    assert login.status_code == 403, login.text
