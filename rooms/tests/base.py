"""Helpers for room tests: create rooms and send events through the API."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import quote

from accounts.models import User
from matrixhs.testing import ApiResponse, MatrixTestCase

_txn = itertools.count()
V3 = "/_matrix/client/v3"


def q(value: str) -> str:
    return quote(value, safe="")


class RoomTestCase(MatrixTestCase):
    def create_room(self, user: User, **body: Any) -> str:
        response = self.api(user).post(f"{V3}/createRoom", body)
        self.assertEqual(response.status_code, 200, response.body)
        return str(response.body["room_id"])

    def send(
        self,
        user: User,
        room_id: str,
        body: str = "hello",
        event_type: str = "m.room.message",
        content: dict[str, Any] | None = None,
    ) -> ApiResponse:
        content = content if content is not None else {"msgtype": "m.text", "body": body}
        return self.api(user).put(
            f"{V3}/rooms/{q(room_id)}/send/{event_type}/t{next(_txn)}", content
        )

    def send_ok(self, user: User, room_id: str, body: str = "hello", **kw: Any) -> str:
        response = self.send(user, room_id, body, **kw)
        self.assertEqual(response.status_code, 200, response.body)
        return str(response.body["event_id"])

    def set_state(
        self,
        user: User,
        room_id: str,
        event_type: str,
        content: dict[str, Any],
        state_key: str = "",
    ) -> ApiResponse:
        return self.api(user).put(
            f"{V3}/rooms/{q(room_id)}/state/{event_type}/{q(state_key)}", content
        )

    def join(self, user: User, room_id: str) -> ApiResponse:
        return self.api(user).post(f"{V3}/join/{q(room_id)}", {})

    def invite(self, user: User, room_id: str, invitee: User) -> ApiResponse:
        return self.api(user).post(f"{V3}/rooms/{q(room_id)}/invite", {"user_id": invitee.user_id})

    def leave(self, user: User, room_id: str) -> ApiResponse:
        return self.api(user).post(f"{V3}/rooms/{q(room_id)}/leave", {})

    def messages(self, user: User, room_id: str, query: str = "dir=b&limit=50") -> ApiResponse:
        return self.api(user).get(f"{V3}/rooms/{q(room_id)}/messages?{query}")

    def timeline_bodies(self, user: User, room_id: str) -> list[str]:
        chunk = self.messages(user, room_id).body["chunk"]
        return [e["content"].get("body") for e in reversed(chunk) if e["type"] == "m.room.message"]
