"""The two things every federation workflow needs from the transport, in one place (and
one place for tests to replace): the client that asks other servers, and the check of
the signatures on their events."""

from __future__ import annotations

from typing import Any, Protocol

from federation.actions.remote_rooms import MembershipRemote
from federation.auth import verify_event
from matrixhs.errors import JsonDict

__all__ = ["FederationClient", "remote", "verify_event"]


class FederationClient(MembershipRemote, Protocol):
    """Every call this server makes to other servers (federation.transport.client)."""

    def backfill(
        self, destination: str, room_id: str, event_ids: list[str], limit: int
    ) -> list[JsonDict]: ...

    def query_directory(self, destination: str, room_alias: str) -> JsonDict: ...

    def query_profile(
        self, destination: str, user_id: str, field: str | None = None
    ) -> JsonDict: ...

    def public_rooms(self, destination: str, **params: Any) -> JsonDict: ...


def remote() -> FederationClient:
    """The client this server asks other servers with (signed requests)."""
    from federation.transport.client import federation_client

    return federation_client()  # type: ignore[no-any-return]
