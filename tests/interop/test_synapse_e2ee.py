"""End-to-end encryption across servers: a matrix-nio client (vodozemac) on this server
and one on Synapse share an encrypted room; each one's megolm message decrypts on the
other side (device keys queried and one-time keys claimed over federation, room keys
sent as olm-encrypted to-device messages between the servers)."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from types import SimpleNamespace

import nio
import pytest

from tests.e2e.server import RunningServer
from tests.e2e.test_nio_e2ee import MEGOLM, _encrypting_client, _sync_until, _timeline

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.interop,
    pytest.mark.skipif(
        not nio.crypto.ENCRYPTION_ENABLED, reason="matrix-nio without its e2e extra (vodozemac)"
    ),
]


async def _send_and_decrypt(
    sender: nio.AsyncClient, receiver: nio.AsyncClient, room_id: str, text: str, deadline: float
) -> None:
    sent = await sender.room_send(
        room_id,
        "m.room.message",
        {"msgtype": "m.text", "body": text},
        ignore_unverified_devices=True,
    )
    assert isinstance(sent, nio.RoomSendResponse), sent
    got = await _sync_until(
        receiver,
        lambda r: any(e.event_id == sent.event_id for e in _timeline(r, room_id)),
        deadline,
    )
    event = next(e for e in _timeline(got, room_id) if e.event_id == sent.event_id)
    assert isinstance(event, nio.RoomMessageText), event  # decrypted, not a MegolmEvent
    assert event.body == text
    assert event.decrypted


async def _conversation(ours_url: str, theirs_url: str, store: Path) -> None:
    suffix = secrets.token_hex(3)
    alice = await _encrypting_client(SimpleNamespace(base_url=ours_url), f"ea{suffix}", store / "a")
    bob = await _encrypting_client(SimpleNamespace(base_url=theirs_url), f"eb{suffix}", store / "b")
    deadline = time.monotonic() + 120
    try:
        for client in (alice, bob):
            await _sync_until(client, lambda r: True, deadline)
        created = await alice.room_create(
            name="Across servers",
            invite=[bob.user_id],
            initial_state=[
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}
            ],
        )
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
        await _sync_until(bob, lambda r: room_id in r.rooms.invite, deadline)
        joined = await bob.join(room_id)
        assert isinstance(joined, nio.JoinResponse), joined
        await _sync_until(bob, lambda r: room_id in r.rooms.join, deadline)
        await _sync_until(
            alice,
            lambda _r: room_id in alice.rooms and bob.user_id in alice.rooms[room_id].users,
            deadline,
        )
        await _send_and_decrypt(alice, bob, room_id, "from matrixhs, encrypted", deadline)
        await _send_and_decrypt(bob, alice, room_id, "from synapse, encrypted", deadline)
    finally:
        await alice.close()
        await bob.close()


def test_megolm_messages_decrypt_on_both_servers(
    federating_server: RunningServer, synapse_url: str, tmp_path: Path
) -> None:
    asyncio.run(_conversation(federating_server.base_url, synapse_url, tmp_path))
