"""The two things every federation workflow needs from the transport, in one place (and
one place for tests to replace): the client that asks other servers, and the check of
the signatures on their events."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

import httpx
from django.conf import settings

from federation.actions.remote_rooms import MembershipRemote
from federation.auth import verify_event
from matrixhs.errors import Codes, Forbidden, JsonDict, MatrixError, NotFound

logger = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["FederationClient", "ask", "remote", "verify_event"]


class FederationClient(MembershipRemote, Protocol):
    """Every call this server makes to other servers (federation.transport.client)."""

    def backfill(
        self, destination: str, room_id: str, event_ids: list[str], limit: int
    ) -> list[JsonDict]: ...

    def query_directory(self, destination: str, room_alias: str) -> JsonDict: ...

    def query_profile(
        self, destination: str, user_id: str, field: str | None = None
    ) -> JsonDict: ...

    def query_user_keys(self, destination: str, device_keys: JsonDict) -> JsonDict:
        """POST /user/keys/query {"device_keys": device_keys}."""
        ...

    def claim_user_keys(self, destination: str, one_time_keys: JsonDict) -> JsonDict:
        """POST /user/keys/claim {"one_time_keys": one_time_keys}."""
        ...

    def user_devices(self, destination: str, user_id: str) -> JsonDict:
        """GET /user/devices/{userId}."""
        ...

    def media_download(
        self, destination: str, media_id: str
    ) -> AbstractContextManager[httpx.Response]:
        """GET /media/download/{mediaId}: the streamed multipart answer (a 404 raises)."""
        ...

    def public_rooms(self, destination: str, body: JsonDict) -> JsonDict:
        """POST /publicRooms (limit, since, filter, include_all_networks...)."""
        ...


def remote() -> FederationClient:
    """The client this server asks other servers with (signed requests)."""
    from federation.transport.client import federation_client

    return federation_client()  # type: ignore[no-any-return]


def ask(server: str, what: str, call: Callable[[FederationClient], T]) -> T:
    """The answer of ``server`` to a query a client asked us to relay (``what`` names it
    in errors): its 404 stays a 404, its other errors stay theirs, and a server that
    could not be asked is a 502.

    Raises:
        Forbidden: federation is off here.
        NotFound: the server has no such thing.
        MatrixError: its error, or 502 M_UNKNOWN when it could not be reached.
    """
    if not settings.MATRIXHS_FEDERATION_ENABLED:
        raise Forbidden("This server does not federate")
    try:
        return call(remote())
    except MatrixError as exc:
        if exc.errcode == Codes.NOT_FOUND or exc.status == 404:
            raise NotFound(f"{what} was not found") from exc
        raise
    except Exception as exc:
        logger.info("Asking %s for %s failed: %s", server, what, exc)
        raise MatrixError(502, Codes.UNKNOWN, f"Could not ask {server} for {what}") from exc
