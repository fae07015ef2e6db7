"""Two matrix-nio clients run a room end to end against the real server process
(reading through /messages, /context and /state; /sync is not used)."""

from __future__ import annotations

import asyncio

import nio
import pytest

from tests.e2e.server import RunningServer

pytestmark = pytest.mark.e2e


async def _client(server: RunningServer, name: str) -> nio.AsyncClient:
    client = nio.AsyncClient(server.base_url, name)
    response = await client.register(name, f"{name} password", device_name=f"{name} phone")
    assert isinstance(response, nio.RegisterResponse), response
    return client


def ok(response: object, kind: type) -> object:
    assert isinstance(response, kind), response
    return response


async def _room_life(server: RunningServer) -> None:
    alice = await _client(server, "alice")
    bob = await _client(server, "bob")
    try:
        created = ok(await alice.room_create(name="Tea", topic="Brewing"), nio.RoomCreateResponse)
        room = created.room_id
        ok(await alice.room_invite(room, bob.user_id), nio.RoomInviteResponse)
        ok(await bob.join(room), nio.JoinResponse)

        hello = ok(
            await alice.room_send(
                room, "m.room.message", {"msgtype": "m.text", "body": "hello bob"}
            ),
            nio.RoomSendResponse,
        )
        reply = ok(
            await bob.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "hi alice"}),
            nio.RoomSendResponse,
        )
        ok(
            await alice.room_put_state(room, "m.room.name", {"name": "Tea room"}),
            nio.RoomPutStateResponse,
        )
        ok(
            await alice.room_put_state(room, "m.room.topic", {"topic": "Oolong only"}),
            nio.RoomPutStateResponse,
        )
        ok(
            await bob.room_send(
                room,
                "m.reaction",
                {
                    "m.relates_to": {
                        "rel_type": "m.annotation",
                        "event_id": hello.event_id,
                        "key": "🍵",
                    }
                },
            ),
            nio.RoomSendResponse,
        )
        ok(
            await alice.room_send(
                room,
                "m.room.message",
                {
                    "msgtype": "m.text",
                    "body": "* hello bob!",
                    "m.new_content": {"msgtype": "m.text", "body": "hello bob!"},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": hello.event_id},
                },
            ),
            nio.RoomSendResponse,
        )
        ok(await bob.room_redact(room, reply.event_id, reason="typo"), nio.RoomRedactResponse)

        name = ok(
            await bob.room_get_state_event(room, "m.room.name"), nio.RoomGetStateEventResponse
        )
        assert name.content == {"name": "Tea room"}
        state = ok(await bob.room_get_state(room), nio.RoomGetStateResponse)
        assert {e["type"] for e in state.events} >= {
            "m.room.create",
            "m.room.topic",
            "m.room.member",
        }

        messages = ok(await bob.room_messages(room, limit=3), nio.RoomMessagesResponse)
        earlier = ok(
            await bob.room_messages(room, start=messages.end, limit=50), nio.RoomMessagesResponse
        )
        raw = [e.source for e in messages.chunk + earlier.chunk]
        by_id = {e["event_id"]: e for e in raw}
        assert by_id[reply.event_id]["content"] == {}  # redacted
        assert (
            by_id[hello.event_id]["unsigned"]["m.relations"]["m.replace"]["content"]["body"]
            == "* hello bob!"
        )
        assert raw[-1]["type"] == "m.room.create"  # paged all the way back

        context = ok(await bob.room_context(room, hello.event_id, limit=2), nio.RoomContextResponse)
        assert context.event.event_id == hello.event_id

        ok(
            await alice.room_kick(room, bob.user_id, reason="tea time is over"),
            nio.RoomKickResponse,
        )
        ok(await alice.room_ban(room, bob.user_id), nio.RoomBanResponse)
        refused = await bob.join(room)
        assert isinstance(refused, nio.JoinError) and refused.status_code == "M_FORBIDDEN"
        ok(
            await alice.room_unban(room, bob.user_id),
            nio.RoomUnbanResponse if hasattr(nio, "RoomUnbanResponse") else nio.RoomBanResponse,
        )

        lobby = ok(
            await alice.room_create(
                alias="lobby",
                preset=nio.RoomPreset.public_chat,
                visibility=nio.RoomVisibility.public,
            ),
            nio.RoomCreateResponse,
        )
        alias = f"#lobby:{server.server_name}"
        resolved = ok(await bob.room_resolve_alias(alias), nio.RoomResolveAliasResponse)
        assert resolved.room_id == lobby.room_id
        joined = ok(await bob.join(alias), nio.JoinResponse)
        assert joined.room_id == lobby.room_id
        rooms = ok(await bob.joined_rooms(), nio.JoinedRoomsResponse)
        assert rooms.rooms == [lobby.room_id]
    finally:
        await alice.close()
        await bob.close()


def test_two_nio_clients_run_a_room(server: RunningServer) -> None:
    asyncio.run(_room_life(server))
