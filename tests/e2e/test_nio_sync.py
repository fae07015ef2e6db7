"""A matrix-nio client syncing in a loop against the real server receives another user's
messages, typing notifications and read receipts."""

from __future__ import annotations

import asyncio
import time

import nio
import pytest

from tests.e2e.server import RunningServer

pytestmark = pytest.mark.e2e


async def _registered(server: RunningServer, name: str) -> nio.AsyncClient:
    client = nio.AsyncClient(server.base_url, name)
    response = await client.register(name, f"{name} password", device_name=name)
    assert isinstance(response, nio.RegisterResponse), response
    return client


async def _sync_until(client: nio.AsyncClient, predicate, deadline: float) -> nio.SyncResponse:
    while time.monotonic() < deadline:
        response = await client.sync(timeout=5000, since=client.next_batch)
        assert isinstance(response, nio.SyncResponse), response
        if predicate(response):
            return response
    raise AssertionError("the expected sync never came")


def _room(response: nio.SyncResponse, room_id: str) -> nio.RoomInfo | None:
    return response.rooms.join.get(room_id)


async def _conversation(server: RunningServer) -> None:
    alice = await _registered(server, "sally")
    bob = await _registered(server, "sam")
    try:
        room_id = (
            await alice.room_create(name="Sync test", preset=nio.RoomPreset.public_chat)
        ).room_id
        assert isinstance(await bob.join(room_id), nio.JoinResponse)
        first = await bob.sync(timeout=0, full_state=True)
        assert isinstance(first, nio.SyncResponse), first
        assert room_id in first.rooms.join
        assert bob.rooms[room_id].display_name == "Sync test"

        deadline = time.monotonic() + 30

        async def send_later() -> str:
            await asyncio.sleep(0.5)
            sent = await alice.room_send(
                room_id, "m.room.message", {"msgtype": "m.text", "body": "ping"}
            )
            return sent.event_id

        sender = asyncio.ensure_future(send_later())
        got = await _sync_until(
            bob,
            lambda r: (
                _room(r, room_id)
                and any(
                    getattr(e, "body", None) == "ping" for e in _room(r, room_id).timeline.events
                )
            ),
            deadline,
        )
        event_id = await sender
        assert any(e.event_id == event_id for e in _room(got, room_id).timeline.events)

        await alice.room_typing(room_id, True, timeout=10000)
        typing = await _sync_until(
            bob,
            lambda r: (
                _room(r, room_id)
                and any(
                    isinstance(e, nio.TypingNoticeEvent) and alice.user_id in e.users
                    for e in _room(r, room_id).ephemeral
                )
            ),
            deadline,
        )
        assert typing is not None
        assert (
            bob.rooms[room_id].typing_users == [alice.user_id]
            or alice.user_id in bob.rooms[room_id].typing_users
        )

        await alice.room_read_markers(room_id, event_id, event_id)
        receipt = await _sync_until(
            bob,
            lambda r: (
                _room(r, room_id)
                and any(isinstance(e, nio.ReceiptEvent) for e in _room(r, room_id).ephemeral)
            ),
            deadline,
        )
        receipts = [e for e in _room(receipt, room_id).ephemeral if isinstance(e, nio.ReceiptEvent)]
        assert any(
            r.user_id == alice.user_id and r.event_id == event_id
            for e in receipts
            for r in e.receipts
        )
    finally:
        await alice.close()
        await bob.close()


def test_nio_sync_loop_receives_messages_typing_and_receipts(server: RunningServer) -> None:
    asyncio.run(_conversation(server))
