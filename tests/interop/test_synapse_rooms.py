"""More of what crosses between this server and a real Synapse: presence, thumbnails of
the other server's media, knocks and room upgrades, each in both directions."""

from __future__ import annotations

import io
import secrets
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from PIL import Image

from tests.e2e.server import RunningServer
from tests.interop.conftest import SYNAPSE_SERVER_NAME
from tests.interop.test_synapse import WAIT_S, User

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

KNOCK_RULE = {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}


@pytest.fixture(scope="module")
def ours(federating_server: RunningServer) -> User:
    return User(federating_server.base_url, f"rooms{secrets.token_hex(3)}")


@pytest.fixture(scope="module")
def theirs(synapse_url: str) -> User:
    return User(synapse_url, f"z{secrets.token_hex(3)}")


@pytest.fixture(scope="module")
def our_server_name(federating_server: RunningServer) -> str:
    return federating_server.server_name


def _shared_room(creator: User, other: User, preset: str = "public_chat") -> str:
    room_id = str(creator.call("POST", "/createRoom", {"preset": preset})["room_id"])
    creator.call("POST", f"/rooms/{quote(room_id)}/invite", {"user_id": other.user_id})
    other.wait_for_membership(room_id, other.user_id, "invite", section="invite")
    other.join(room_id)
    creator.wait_for_membership(room_id, other.user_id, "join")
    return room_id


def _presence(user_id: str, status: str) -> Any:
    return lambda s, r, e: (
        s == "presence"
        and e.get("sender") == user_id
        and e.get("content", {}).get("status_msg") == status
    )


def test_presence_crosses_both_ways(ours: User, theirs: User) -> None:
    _shared_room(ours, theirs)
    status = f"ours {secrets.token_hex(3)}"
    ours.call(
        "PUT",
        f"/presence/{quote(ours.user_id)}/status",
        {"presence": "online", "status_msg": status},
    )
    event = theirs.wait_for("our presence", _presence(ours.user_id, status))
    assert event["content"]["presence"] == "online"

    status = f"theirs {secrets.token_hex(3)}"
    theirs.call(
        "PUT",
        f"/presence/{quote(theirs.user_id)}/status",
        {"presence": "unavailable", "status_msg": status},
    )
    event = ours.wait_for("their presence", _presence(theirs.user_id, status))
    assert event["content"]["presence"] == "unavailable"
    got = ours.call("GET", f"/presence/{quote(theirs.user_id)}/status")
    assert got["presence"] == "unavailable" and got["status_msg"] == status


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(out, "PNG")
    return out.getvalue()


def _thumbnail(user: User, mxc: str) -> Image.Image:
    server, media_id = mxc[len("mxc://") :].split("/", 1)
    got = user.http.get(
        f"/_matrix/client/v1/media/thumbnail/{server}/{media_id}",
        params={"width": 32, "height": 32, "method": "crop"},
        timeout=httpx.Timeout(60),
    )
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("image/"), got.headers
    image = Image.open(io.BytesIO(got.content))
    image.load()
    return image


def test_thumbnails_of_the_other_servers_media(ours: User, theirs: User) -> None:
    for uploader, viewer in ((theirs, ours), (ours, theirs)):
        uploaded = uploader.http.post(
            "/_matrix/media/v3/upload?filename=picture.png",
            content=_png(640, 480),
            headers={"Content-Type": "image/png"},
        )
        assert uploaded.status_code == 200, uploaded.text
        image = _thumbnail(viewer, uploaded.json()["content_uri"])
        # A thumbnail, not the original: at most a few times the requested size.
        assert 32 <= image.width <= 200 and 32 <= image.height <= 200, image.size


def _knock_then_admit(owner: User, knocker: User, owner_server: str) -> None:
    room_id = str(
        owner.call(
            "POST", "/createRoom", {"preset": "private_chat", "initial_state": [KNOCK_RULE]}
        )["room_id"]
    )
    deadline = time.monotonic() + WAIT_S
    while True:
        answer = knocker.http.post(
            f"/_matrix/client/v3/knock/{quote(room_id)}?server_name={quote(owner_server)}",
            json={"reason": "let me in"},
        )
        if answer.status_code == 200:
            break
        assert time.monotonic() < deadline, answer.text
        time.sleep(1)
    assert answer.json()["room_id"] == room_id
    knock = owner.wait_for_membership(room_id, knocker.user_id, "knock")
    assert knock["content"].get("reason") == "let me in"
    owner.call("POST", f"/rooms/{quote(room_id)}/invite", {"user_id": knocker.user_id})
    knocker.wait_for_membership(room_id, knocker.user_id, "invite", section="invite")
    knocker.join(room_id)
    owner.wait_for_membership(room_id, knocker.user_id, "join")
    knocker.send_text(room_id, "knocked and came in")
    owner.wait_for_message(room_id, "knocked and came in")


def test_knock_on_a_synapse_room(ours: User, theirs: User) -> None:
    _knock_then_admit(theirs, ours, SYNAPSE_SERVER_NAME)


def test_synapse_user_knocks_on_our_room(ours: User, theirs: User, our_server_name: str) -> None:
    _knock_then_admit(ours, theirs, our_server_name)


def _upgrade_and_follow(owner: User, member: User, owner_server: str) -> None:
    old_room = _shared_room(owner, member)
    owner.call(
        "PUT",
        f"/rooms/{quote(old_room)}/state/m.room.name/",
        {"name": "Before the upgrade"},
    )
    new_room = str(
        owner.call("POST", f"/rooms/{quote(old_room)}/upgrade", {"new_version": "12"})[
            "replacement_room"
        ]
    )
    tombstone = member.wait_for(
        "the tombstone",
        lambda s, r, e: r == old_room and e.get("type") == "m.room.tombstone",
    )
    assert tombstone["content"]["replacement_room"] == new_room
    assert member.join(new_room, via=[owner_server]) == new_room
    state = member.call("GET", f"/rooms/{quote(new_room)}/state")
    by_type = {(e["type"], e["state_key"]): e["content"] for e in state}
    assert by_type[("m.room.name", "")]["name"] == "Before the upgrade"
    create = by_type[("m.room.create", "")]
    assert create["predecessor"]["room_id"] == old_room
    member.send_text(new_room, "followed the upgrade")
    owner.wait_for_message(new_room, "followed the upgrade")


def test_our_room_upgraded_and_followed_by_synapse(
    ours: User, theirs: User, our_server_name: str
) -> None:
    _upgrade_and_follow(ours, theirs, our_server_name)


def test_synapse_room_upgraded_and_followed_by_us(ours: User, theirs: User) -> None:
    _upgrade_and_follow(theirs, ours, SYNAPSE_SERVER_NAME)
