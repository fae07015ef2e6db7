"""Aliases of other servers, resolved by asking them (GET /query/directory)."""

from __future__ import annotations

import logging

from federation import peers
from matrixhs.errors import Codes, MatrixError, NotFound
from matrixhs.protocol.ids import server_name_of

logger = logging.getLogger(__name__)


def resolve_remote_alias(alias: str) -> tuple[str, list[str]]:
    """The room ID an alias of another server points to, and the servers to join it
    through (the alias's server first).

    Raises:
        NotFound: the server does not know the alias.
        MatrixError: 502 M_UNKNOWN when it could not be asked or answered nonsense.
    """
    server = server_name_of(alias)
    try:
        answer = peers.remote().query_directory(server, alias)
    except MatrixError as exc:
        if exc.errcode == Codes.NOT_FOUND or exc.status == 404:
            raise NotFound("Room alias not found") from exc
        raise
    except Exception as exc:
        logger.info("Resolving %s at %s failed: %s", alias, server, exc)
        raise MatrixError(502, Codes.UNKNOWN, f"Could not resolve {alias} at {server}") from exc
    room_id, servers = answer.get("room_id"), answer.get("servers")
    if not isinstance(room_id, str) or not room_id.startswith("!"):
        raise MatrixError(502, Codes.UNKNOWN, f"{server} answered no room ID for {alias}")
    listed = [s for s in servers if isinstance(s, str)] if isinstance(servers, list) else []
    return room_id, list(dict.fromkeys([server, *listed]))
