"""What users see live across servers, with a real Synapse: typing and read receipts,
to-device messages, device keys (query, claim, device list changes), history from before
a join (backfill), and media of the other server, both directions where it applies."""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from e2ee.tests.support import ClientDevice
from tests.e2e.server import RunningServer
from tests.interop.conftest import SYNAPSE_SERVER_NAME
from tests.interop.test_synapse import User

pytestmark = [pytest.mark.e2e, pytest.mark.interop]


@pytest.fixture(scope="module")
def ours(federating_server: RunningServer) -> User:
    return User(federating_server.base_url, f"live{secrets.token_hex(3)}")


@pytest.fixture(scope="module")
def theirs(synapse_url: str) -> User:
    return User(synapse_url, f"y{secrets.token_hex(3)}")


@pytest.fixture(scope="module")
def shared_room(ours: User, theirs: User) -> str:
    room_id = str(ours.call("POST", "/createRoom", {"preset": "private_chat"})["room_id"])
    ours.call("POST", f"/rooms/{quote(room_id)}/invite", {"user_id": theirs.user_id})
    theirs.wait_for_membership(room_id, theirs.user_id, "invite", section="invite")
    theirs.join(room_id)
    ours.wait_for_membership(room_id, theirs.user_id, "join")
    return room_id


def _typing(user_id: str, room_id: str) -> Any:
    return lambda s, r, e: (
        s == "ephemeral"
        and r == room_id
        and e.get("type") == "m.typing"
        and user_id in e.get("content", {}).get("user_ids", [])
    )


def _receipt(user_id: str, room_id: str, event_id: str) -> Any:
    return lambda s, r, e: (
        s == "ephemeral"
        and r == room_id
        and e.get("type") == "m.receipt"
        and user_id in e.get("content", {}).get(event_id, {}).get("m.read", {})
    )


def test_typing_and_read_receipts_cross(ours: User, theirs: User, shared_room: str) -> None:
    room = quote(shared_room)
    ours.call(
        "PUT", f"/rooms/{room}/typing/{quote(ours.user_id)}", {"typing": True, "timeout": 20000}
    )
    theirs.wait_for("our typing", _typing(ours.user_id, shared_room))
    theirs.call(
        "PUT", f"/rooms/{room}/typing/{quote(theirs.user_id)}", {"typing": True, "timeout": 20000}
    )
    ours.wait_for("their typing", _typing(theirs.user_id, shared_room))

    theirs_event = theirs.send_text(shared_room, "read me")
    ours.wait_for_message(shared_room, "read me")
    ours.call("POST", f"/rooms/{room}/receipt/m.read/{quote(theirs_event)}", {})
    theirs.wait_for("our receipt", _receipt(ours.user_id, shared_room, theirs_event))
    our_event = ours.send_text(shared_room, "and me")
    theirs.wait_for_message(shared_room, "and me")
    theirs.call("POST", f"/rooms/{room}/receipt/m.read/{quote(our_event)}", {})
    ours.wait_for("their receipt", _receipt(theirs.user_id, shared_room, our_event))


def test_to_device_messages_both_ways(ours: User, theirs: User, shared_room: str) -> None:
    def sent_by(sender: str, marker: str) -> Any:
        return lambda s, r, e: (
            s == "to_device"
            and e.get("sender") == sender
            and e.get("content", {}).get("marker") == marker
        )

    ours.call(
        "PUT",
        f"/sendToDevice/m.interop.test/{secrets.token_hex(4)}",
        {"messages": {theirs.user_id: {theirs.device_id: {"marker": "one device"}}}},
    )
    theirs.wait_for("our message to one device", sent_by(ours.user_id, "one device"))
    ours.call(
        "PUT",
        f"/sendToDevice/m.interop.test/{secrets.token_hex(4)}",
        {"messages": {theirs.user_id: {"*": {"marker": "every device"}}}},
    )
    theirs.wait_for("our message to every device", sent_by(ours.user_id, "every device"))
    theirs.call(
        "PUT",
        f"/sendToDevice/m.interop.test/{secrets.token_hex(4)}",
        {"messages": {ours.user_id: {ours.device_id: {"marker": "back"}}}},
    )
    ours.wait_for("their message", sent_by(theirs.user_id, "back"))


def test_device_keys_query_claim_and_changes(ours: User, theirs: User, shared_room: str) -> None:
    # Their new device keys: our user hears of the change and finds them.
    their_device = ClientDevice(theirs.user_id, theirs.device_id)
    uploaded = theirs.call(
        "POST",
        "/keys/upload",
        {"device_keys": their_device.device_keys(), "one_time_keys": their_device.one_time_keys(3)},
    )
    assert uploaded["one_time_key_counts"]["signed_curve25519"] == 3
    ours.wait_for(
        "their device list change",
        lambda s, r, e: s == "device_lists" and theirs.user_id in e["changed"],
    )
    found = ours.call("POST", "/keys/query", {"device_keys": {theirs.user_id: []}})
    assert theirs.device_id in found["device_keys"][theirs.user_id], found
    claimed = ours.call(
        "POST",
        "/keys/claim",
        {"one_time_keys": {theirs.user_id: {theirs.device_id: "signed_curve25519"}}},
    )
    assert claimed["one_time_keys"][theirs.user_id][theirs.device_id], claimed
    counts = theirs.call("POST", "/keys/upload", {})["one_time_key_counts"]
    assert counts["signed_curve25519"] == 2

    # And the other way: Synapse asks us.
    our_device = ClientDevice(ours.user_id, ours.device_id)
    ours.call(
        "POST",
        "/keys/upload",
        {"device_keys": our_device.device_keys(), "one_time_keys": our_device.one_time_keys(2)},
    )
    theirs.wait_for(
        "our device list change",
        lambda s, r, e: s == "device_lists" and ours.user_id in e["changed"],
    )
    found = theirs.call("POST", "/keys/query", {"device_keys": {ours.user_id: []}})
    assert ours.device_id in found["device_keys"][ours.user_id], found
    claimed = theirs.call(
        "POST",
        "/keys/claim",
        {"one_time_keys": {ours.user_id: {ours.device_id: "signed_curve25519"}}},
    )
    assert claimed["one_time_keys"][ours.user_id][ours.device_id], claimed
    assert ours.call("POST", "/keys/upload", {})["one_time_key_counts"]["signed_curve25519"] == 1


def test_history_from_before_the_join_is_backfilled(ours: User, theirs: User) -> None:
    room_id = theirs.call("POST", "/createRoom", {"preset": "public_chat"})["room_id"]
    texts = [f"before we came {n}" for n in range(50)]
    for text in texts:
        theirs.send_text(room_id, text)
    assert ours.join(room_id, via=[SYNAPSE_SERVER_NAME]) == room_id
    assert ours.history(room_id, page=10) == list(reversed(texts))


def test_media_of_the_other_server(
    ours: User, theirs: User, federating_server: RunningServer
) -> None:
    data = secrets.token_bytes(70_000)
    uploaded = theirs.http.post(
        "/_matrix/media/v3/upload?filename=blob.bin",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert uploaded.status_code == 200, uploaded.text
    server, media_id = uploaded.json()["content_uri"][len("mxc://") :].split("/", 1)
    got = ours.http.get(f"/_matrix/client/v1/media/download/{server}/{media_id}")
    assert got.status_code == 200, got.text
    assert got.content == data

    ours_uploaded = ours.http.post(
        "/_matrix/media/v3/upload?filename=ours.bin",
        content=data[::-1],
        headers={"Content-Type": "application/octet-stream"},
    )
    assert ours_uploaded.status_code == 200, ours_uploaded.text
    server, media_id = ours_uploaded.json()["content_uri"][len("mxc://") :].split("/", 1)
    got = theirs.http.get(
        f"/_matrix/client/v1/media/download/{server}/{media_id}", timeout=httpx.Timeout(60)
    )
    assert got.status_code == 200, got.text
    assert got.content == data[::-1]


def test_a_new_device_of_theirs_reaches_our_kept_list(
    ours: User, theirs: User, shared_room: str
) -> None:
    ours.call("POST", "/keys/query", {"device_keys": {theirs.user_id: []}})  # kept from now
    login = theirs.http.post(
        "/_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": theirs.user_id},
            "password": "interop-Pass-1",
        },
        headers={"Authorization": ""},
    )
    assert login.status_code == 200, login.text
    new_device = login.json()["device_id"]
    device = ClientDevice(theirs.user_id, new_device)
    uploaded = theirs.http.post(
        "/_matrix/client/v3/keys/upload",
        json={"device_keys": device.device_keys()},
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
    )
    assert uploaded.status_code == 200, uploaded.text
    deadline = time.monotonic() + 60
    while True:
        found = ours.call("POST", "/keys/query", {"device_keys": {theirs.user_id: []}})
        if new_device in found["device_keys"].get(theirs.user_id, {}):
            break
        assert time.monotonic() < deadline, f"{new_device} never showed: {found}"
        time.sleep(0.5)
    keys = found["device_keys"][theirs.user_id][new_device]
    assert keys["keys"] == device.device_keys()["keys"]
