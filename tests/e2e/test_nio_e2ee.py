"""Two matrix-nio clients with end-to-end encryption (vodozemac) against the real server.

Both upload device and one-time keys; Alice creates an encrypted room and invites Bob.
Alice's nio queries Bob's device keys, claims a one-time key, shares the megolm room key
with Bob over an olm-encrypted to-device message and sends an encrypted message; Bob's
nio decrypts it from /sync. The server only ever stores the m.room.encrypted event. A
plain to-device message is also delivered through /sync.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import nio
import pytest

from tests.e2e.server import RunningServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not nio.crypto.ENCRYPTION_ENABLED, reason="matrix-nio without its e2e extra (vodozemac)"
    ),
]

MEGOLM = "m.megolm.v1.aes-sha2"


async def _encrypting_client(server: RunningServer, name: str, store: Path) -> nio.AsyncClient:
    store.mkdir()
    config = nio.AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True)
    client = nio.AsyncClient(server.base_url, name, store_path=str(store), config=config)
    response = await client.register(name, f"{name} password", device_name=f"{name} nio")
    assert isinstance(response, nio.RegisterResponse), response
    assert client.olm is not None  # the crypto store loaded on login
    return client


async def _sync(client: nio.AsyncClient, timeout_ms: int = 0) -> nio.SyncResponse:
    response = await client.sync(timeout=timeout_ms, since=client.next_batch, full_state=False)
    assert isinstance(response, nio.SyncResponse), response
    if client.should_upload_keys:
        uploaded = await client.keys_upload()
        assert isinstance(uploaded, nio.KeysUploadResponse), uploaded
    if client.should_query_keys:
        queried = await client.keys_query()
        assert isinstance(queried, nio.KeysQueryResponse), queried
    return response


async def _sync_until(client: nio.AsyncClient, predicate, deadline: float) -> nio.SyncResponse:
    while time.monotonic() < deadline:
        response = await _sync(client, timeout_ms=2000)
        if predicate(response):
            return response
    raise AssertionError(f"{client.user_id}: the expected sync never came")


def _timeline(response: nio.SyncResponse, room_id: str) -> list[nio.Event]:
    room = response.rooms.join.get(room_id)
    return list(room.timeline.events) if room else []


async def _encrypted_conversation(server: RunningServer, store: Path) -> None:
    alice = await _encrypting_client(server, "eliza", store / "alice")
    bob = await _encrypting_client(server, "ezra", store / "bob")
    deadline = time.monotonic() + 45
    try:
        # First sync, then the device keys and the one-time keys go up.
        for client in (alice, bob):
            await _sync(client)
            assert not client.should_upload_keys
        bob_one_time_keys = bob.olm.uploaded_key_count
        assert bob_one_time_keys
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            queried = await http.post(
                "/_matrix/client/v3/keys/query",
                headers={"Authorization": f"Bearer {alice.access_token}"},
                json={"device_keys": {bob.user_id: []}},
            )
        assert queried.status_code == 200, queried.text
        device = queried.json()["device_keys"][bob.user_id][bob.device_id]
        assert (
            device["keys"][f"ed25519:{bob.device_id}"] == bob.olm.account.identity_keys["ed25519"]
        )
        assert bob.olm.account.identity_keys["curve25519"] in device["keys"].values()

        created = await alice.room_create(
            name="Secrets",
            invite=[bob.user_id],
            initial_state=[
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}
            ],
        )
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
        await _sync_until(bob, lambda r: room_id in r.rooms.invite, deadline)
        assert isinstance(await bob.join(room_id), nio.JoinResponse)
        await _sync_until(bob, lambda r: room_id in r.rooms.join, deadline)
        await _sync_until(
            alice,
            lambda _r: room_id in alice.rooms and bob.user_id in alice.rooms[room_id].users,
            deadline,
        )
        assert alice.rooms[room_id].encrypted
        assert bob.rooms[room_id].encrypted

        # Alice's nio claims one of Bob's one-time keys, sends him the room key olm-encrypted
        # as to-device, then sends the megolm-encrypted message.
        text = "the eagle lands at midnight"
        sent = await alice.room_send(
            room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": text},
            ignore_unverified_devices=True,
        )
        assert isinstance(sent, nio.RoomSendResponse), sent

        got = await _sync_until(
            bob,
            lambda r: any(e.event_id == sent.event_id for e in _timeline(r, room_id)),
            deadline,
        )
        event = next(e for e in _timeline(got, room_id) if e.event_id == sent.event_id)
        assert isinstance(event, nio.RoomMessageText), event  # not an undecrypted MegolmEvent
        assert event.body == text
        assert event.sender == alice.user_id
        assert event.decrypted  # nio decrypted it with the room key Alice's device sent
        # Alice's keys/claim took exactly one of Bob's one-time keys; /sync counts the rest.
        assert got.device_key_count.signed_curve25519 == bob_one_time_keys - 1

        # The server holds (and serves) only the ciphertext.
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            messages = await http.get(
                f"/_matrix/client/v3/rooms/{quote(room_id)}/messages",
                params={"dir": "b", "limit": "20"},
                headers={"Authorization": f"Bearer {bob.access_token}"},
            )
        assert messages.status_code == 200, messages.text
        stored = next(e for e in messages.json()["chunk"] if e["event_id"] == sent.event_id)
        assert stored["type"] == "m.room.encrypted"
        assert stored["content"]["algorithm"] == MEGOLM
        assert text not in messages.text
        assert not any(e["type"] == "m.room.message" for e in messages.json()["chunk"])

        # A plain (unencrypted) to-device message from Alice's device to Bob's.
        message = nio.ToDeviceMessage(
            "org.matrixhs.e2e.ping", bob.user_id, bob.device_id, {"nonce": "n-42"}
        )
        answer = await alice.to_device(message, tx_id="ping-1")
        assert isinstance(answer, nio.ToDeviceResponse), answer
        got = await _sync_until(
            bob,
            lambda r: any(
                e.source.get("type") == "org.matrixhs.e2e.ping" for e in r.to_device_events
            ),
            deadline,
        )
        ping = next(e for e in got.to_device_events if e.source["type"] == "org.matrixhs.e2e.ping")
        assert ping.source["sender"] == alice.user_id
        assert ping.source["content"] == {"nonce": "n-42"}
        # Delivered once: the next sync does not repeat it.
        again = await _sync(bob)
        assert not any(
            e.source.get("type") == "org.matrixhs.e2e.ping" for e in again.to_device_events
        )
    finally:
        await alice.close()
        await bob.close()


def test_nio_encrypted_room_message_and_to_device(server: RunningServer, tmp_path: Path) -> None:
    asyncio.run(_encrypted_conversation(server, tmp_path))
