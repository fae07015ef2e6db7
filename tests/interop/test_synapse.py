"""This server and a real Synapse share rooms over federation (TLS, X-Matrix, key
fetching), both directions: invites, joins by room ID and by alias, messages seen in each
side's /sync, and a leave."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.server import RunningServer
from tests.interop.conftest import PAIR_DATA, PAIR_SCRIPT, SYNAPSE_SERVER_NAME

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

WAIT_S = 60
#: Synapse retries a destination that was down on its own schedule (about once a minute
#: for catch-up with the pair's settings).
CATCH_UP_WAIT_S = 150


def pair(command: str) -> None:
    """Stop or start Synapse A (synapse-pair stops it by the PID it recorded)."""
    subprocess.run(
        [str(PAIR_SCRIPT), command, "a"],
        check=True,
        capture_output=True,
        env={**os.environ, "SYNAPSE_PAIR_DATA": str(PAIR_DATA)},
        timeout=180,
    )


class User:
    """A client of one homeserver, with its own /sync position."""

    def __init__(self, base_url: str, localpart: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=70)
        body = {
            "username": localpart,
            "password": "interop-Pass-1",
            "auth": {"type": "m.login.dummy"},
        }
        response = self.http.post("/_matrix/client/v3/register", json=body)
        assert response.status_code == 200, response.text
        self.user_id = response.json()["user_id"]
        self.device_id = response.json()["device_id"]
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        self.since: str | None = None
        self.seen: list[tuple[str, str, dict[str, Any]]] = []  # (section, room_id, event)

    def call(self, method: str, path: str, body: Any = None, ok: bool = True) -> Any:
        response = self.http.request(method, f"/_matrix/client/v3{path}", json=body)
        if ok:
            assert response.status_code == 200, f"{method} {path}: {response.text}"
        return response.json()

    def sync_once(self) -> None:
        params: dict[str, Any] = {"timeout": 2000}
        if self.since:
            params["since"] = self.since
        response = self.http.get("/_matrix/client/v3/sync", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        self.since = body["next_batch"]
        rooms = body.get("rooms", {})
        for room_id, room in rooms.get("join", {}).items():
            for event in room.get("timeline", {}).get("events", []):
                self.seen.append(("join", room_id, event))
            for event in room.get("state", {}).get("events", []):
                self.seen.append(("join", room_id, event))
            for event in room.get("ephemeral", {}).get("events", []):
                self.seen.append(("ephemeral", room_id, event))
        for event in body.get("to_device", {}).get("events", []):
            self.seen.append(("to_device", "", event))
        for event in body.get("presence", {}).get("events", []):
            self.seen.append(("presence", "", event))
        changed = body.get("device_lists", {}).get("changed", [])
        if changed:
            self.seen.append(("device_lists", "", {"changed": changed}))
        for room_id, room in rooms.get("invite", {}).items():
            for event in room.get("invite_state", {}).get("events", []):
                self.seen.append(("invite", room_id, event))
        for room_id, room in rooms.get("leave", {}).items():
            for event in room.get("timeline", {}).get("events", []):
                self.seen.append(("leave", room_id, event))

    def wait_for(
        self, what: str, match: Callable[[str, str, dict[str, Any]], bool], wait_s: float = WAIT_S
    ) -> dict[str, Any]:
        deadline = time.monotonic() + wait_s
        while True:
            for section, room_id, event in self.seen:
                if match(section, room_id, event):
                    return event
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.user_id} never saw {what}")
            self.sync_once()

    def wait_for_message(self, room_id: str, text: str, wait_s: float = WAIT_S) -> dict[str, Any]:
        return self.wait_for(
            f"message {text!r} in {room_id}",
            lambda s, r, e: (
                r == room_id
                and e.get("type") == "m.room.message"
                and e.get("content", {}).get("body") == text
            ),
            wait_s,
        )

    def wait_for_membership(
        self, room_id: str, user_id: str, membership: str, section: str = "join"
    ) -> dict[str, Any]:
        return self.wait_for(
            f"{user_id} {membership} in {room_id}",
            lambda s, r, e: (
                s == section
                and r == room_id
                and e.get("type") == "m.room.member"
                and e.get("state_key") == user_id
                and e.get("content", {}).get("membership") == membership
            ),
        )

    def history(self, room_id: str, page: int, pages: int = 40) -> list[str]:
        """The room's message bodies, newest first, paging back through /messages (at
        most ``pages`` pages)."""
        found: list[str] = []
        token = None
        for _ in range(pages):
            query = f"?dir=b&limit={page}{f'&from={quote(token)}' if token else ''}"
            answer = self.call("GET", f"/rooms/{quote(room_id)}/messages{query}")
            found += [
                e["content"]["body"] for e in answer["chunk"] if e["type"] == "m.room.message"
            ]
            token = answer.get("end")
            if token is None:
                break
        return found

    def send_text(self, room_id: str, text: str) -> str:
        txn = secrets.token_hex(6)
        path = f"/rooms/{quote(room_id)}/send/m.room.message/{txn}"
        return str(self.call("PUT", path, {"msgtype": "m.text", "body": text})["event_id"])

    def join(self, room_or_alias: str, via: list[str] | None = None) -> str:
        deadline = time.monotonic() + WAIT_S
        query = "".join(f"&server_name={quote(s)}" for s in via or [])
        while True:
            response = self.http.post(
                f"/_matrix/client/v3/join/{quote(room_or_alias)}?{query.lstrip('&')}", json={}
            )
            if response.status_code == 200:
                return str(response.json()["room_id"])
            if time.monotonic() > deadline:
                raise AssertionError(f"join {room_or_alias}: {response.text}")
            time.sleep(1)


@pytest.fixture(scope="module")
def ours(federating_server: RunningServer) -> User:
    return User(federating_server.base_url, f"ours{secrets.token_hex(3)}")


@pytest.fixture(scope="module")
def theirs(synapse_url: str) -> User:
    return User(synapse_url, f"x{secrets.token_hex(3)}")


def test_our_room_invite_join_and_messages_both_ways(ours: User, theirs: User) -> None:
    room_id = ours.call("POST", "/createRoom", {"preset": "private_chat", "name": "ours"})[
        "room_id"
    ]
    ours.call("POST", f"/rooms/{quote(room_id)}/invite", {"user_id": theirs.user_id})
    theirs.wait_for_membership(room_id, theirs.user_id, "invite", section="invite")
    assert theirs.join(room_id) == room_id
    ours.wait_for_membership(room_id, theirs.user_id, "join")

    ours.send_text(room_id, "hello from matrixhs")
    theirs.wait_for_message(room_id, "hello from matrixhs")
    theirs.send_text(room_id, "hello from synapse")
    ours.wait_for_message(room_id, "hello from synapse")


def test_synapse_room_joined_by_id_and_by_alias_then_left(ours: User, theirs: User) -> None:
    # Invited into a Synapse room, joined by room ID.
    private = theirs.call("POST", "/createRoom", {"preset": "private_chat", "name": "theirs"})[
        "room_id"
    ]
    theirs.call("POST", f"/rooms/{quote(private)}/invite", {"user_id": ours.user_id})
    ours.wait_for_membership(private, ours.user_id, "invite", section="invite")
    assert ours.join(private) == private
    theirs.wait_for_membership(private, ours.user_id, "join")
    theirs.send_text(private, "welcome")
    ours.wait_for_message(private, "welcome")
    ours.send_text(private, "thanks")
    theirs.wait_for_message(private, "thanks")

    # A public room of Synapse's, joined by its alias.
    alias_local = f"pub{secrets.token_hex(3)}"
    public = theirs.call(
        "POST", "/createRoom", {"preset": "public_chat", "room_alias_name": alias_local}
    )["room_id"]
    alias = f"#{alias_local}:{SYNAPSE_SERVER_NAME}"
    assert ours.join(alias) == public
    theirs.wait_for_membership(public, ours.user_id, "join")
    theirs.send_text(public, "public hello")
    ours.wait_for_message(public, "public hello")

    # Our user leaves; Synapse sees it.
    ours.call("POST", f"/rooms/{quote(public)}/leave", {})
    theirs.wait_for_membership(public, ours.user_id, "leave")


def test_state_power_levels_redaction_kick_and_ban(ours: User, theirs: User) -> None:
    room_id = ours.call("POST", "/createRoom", {"preset": "public_chat", "name": "moderated"})[
        "room_id"
    ]
    ours.call("POST", f"/rooms/{quote(room_id)}/invite", {"user_id": theirs.user_id})
    theirs.wait_for_membership(room_id, theirs.user_id, "invite", section="invite")
    theirs.join(room_id)
    ours.wait_for_membership(room_id, theirs.user_id, "join")

    # Our user gives theirs power 50; theirs renames the room; we see the new name.
    levels = ours.call("GET", f"/rooms/{quote(room_id)}/state/m.room.power_levels/")
    levels["users"][theirs.user_id] = 50
    levels.setdefault("events", {})["m.room.name"] = 50
    ours.call("PUT", f"/rooms/{quote(room_id)}/state/m.room.power_levels/", levels)
    theirs.wait_for(
        "the power levels",
        lambda s, r, e: (
            r == room_id
            and e.get("type") == "m.room.power_levels"
            and e.get("content", {}).get("users", {}).get(theirs.user_id) == 50
        ),
    )
    theirs.call("PUT", f"/rooms/{quote(room_id)}/state/m.room.name/", {"name": "renamed"})
    ours.wait_for(
        "the new name",
        lambda s, r, e: (
            r == room_id
            and e.get("type") == "m.room.name"
            and e.get("content", {}).get("name") == "renamed"
        ),
    )

    # A message of theirs redacted by them reaches us as a redaction.
    event_id = theirs.send_text(room_id, "oops")
    ours.wait_for_message(room_id, "oops")
    theirs.call("PUT", f"/rooms/{quote(room_id)}/redact/{quote(event_id)}/r1", {})
    ours.wait_for(
        "the redaction",
        lambda s, r, e: (
            r == room_id
            and e.get("type") == "m.room.redaction"
            and (e.get("redacts") == event_id or e.get("content", {}).get("redacts") == event_id)
        ),
    )

    # Kick, then ban, then unban: Synapse follows.
    ours.call("POST", f"/rooms/{quote(room_id)}/kick", {"user_id": theirs.user_id})
    theirs.wait_for_membership(room_id, theirs.user_id, "leave", section="leave")
    ours.call("POST", f"/rooms/{quote(room_id)}/ban", {"user_id": theirs.user_id})
    ours.call("POST", f"/rooms/{quote(room_id)}/unban", {"user_id": theirs.user_id})
    ours.wait_for_membership(room_id, theirs.user_id, "leave")
    assert theirs.join(room_id, via=[ours.user_id.split(":", 1)[1]]) == room_id
    ours.wait_for_membership(room_id, theirs.user_id, "join")


def test_messages_sent_while_synapse_is_down_arrive_in_order(ours: User, theirs: User) -> None:
    room_id = ours.call("POST", "/createRoom", {"preset": "public_chat", "name": "outage"})[
        "room_id"
    ]
    ours.call("POST", f"/rooms/{quote(room_id)}/invite", {"user_id": theirs.user_id})
    theirs.wait_for_membership(room_id, theirs.user_id, "invite", section="invite")
    theirs.join(room_id)
    ours.wait_for_membership(room_id, theirs.user_id, "join")

    texts = [f"during the outage {n}" for n in range(3)]
    pair("down")
    try:
        stopped = time.monotonic()
        for text in texts:
            ours.send_text(room_id, text)
            time.sleep(2)
        time.sleep(max(0.0, 20 - (time.monotonic() - stopped)))
    finally:
        pair("up")
    for text in texts:
        theirs.wait_for_message(room_id, text, CATCH_UP_WAIT_S)
    timeline = [
        e["content"]["body"]
        for s, r, e in theirs.seen
        if r == room_id and e.get("type") == "m.room.message"
    ]
    assert [t for t in timeline if t in texts] == texts


def test_messages_sent_while_we_are_down_arrive_in_order(
    ours: User, theirs: User, federating_server: RunningServer
) -> None:
    room_id = theirs.call("POST", "/createRoom", {"preset": "public_chat", "name": "we stop"})[
        "room_id"
    ]
    assert ours.join(room_id, via=[SYNAPSE_SERVER_NAME]) == room_id
    theirs.wait_for_membership(room_id, ours.user_id, "join")

    texts = [f"while matrixhs was down {n}" for n in range(3)]
    federating_server.stop(drop_database=False)
    try:
        stopped = time.monotonic()
        for text in texts:
            theirs.send_text(room_id, text)
            time.sleep(2)
        time.sleep(max(0.0, 20 - (time.monotonic() - stopped)))
    finally:
        federating_server.start()
    for text in texts:
        ours.wait_for_message(room_id, text, CATCH_UP_WAIT_S)
    timeline = [
        e["content"]["body"]
        for s, r, e in ours.seen
        if r == room_id and e.get("type") == "m.room.message"
    ]
    assert [t for t in timeline if t in texts] == texts


def test_profiles_are_asked_over_federation(ours: User, theirs: User) -> None:
    theirs.call("PUT", f"/profile/{quote(theirs.user_id)}/displayname", {"displayname": "X"})
    ours.call("PUT", f"/profile/{quote(ours.user_id)}/displayname", {"displayname": "Ours"})
    assert ours.call("GET", f"/profile/{quote(theirs.user_id)}")["displayname"] == "X"
    assert theirs.call("GET", f"/profile/{quote(ours.user_id)}/displayname") == {
        "displayname": "Ours"
    }
    missing = f"@nobody{secrets.token_hex(3)}:{SYNAPSE_SERVER_NAME}"
    response = ours.call("GET", f"/profile/{quote(missing)}", ok=False)
    assert response["errcode"] == "M_NOT_FOUND"


def test_public_rooms_of_synapse_listed_through_us(ours: User, theirs: User) -> None:
    name = f"listed {secrets.token_hex(3)}"
    room_id = theirs.call(
        "POST", "/createRoom", {"preset": "public_chat", "visibility": "public", "name": name}
    )["room_id"]
    server = quote(SYNAPSE_SERVER_NAME)
    listed = ours.call("GET", f"/publicRooms?server={server}&limit=100")
    assert room_id in [room["room_id"] for room in listed["chunk"]]
    found = ours.call(
        "POST", f"/publicRooms?server={server}", {"filter": {"generic_search_term": name}}
    )
    assert [room["room_id"] for room in found["chunk"]] == [room_id]
