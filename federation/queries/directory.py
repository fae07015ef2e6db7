"""Aliases of other servers, resolved by asking them (GET /query/directory)."""

from __future__ import annotations

import logging

from federation import peers
from matrixhs.errors import Codes, JsonDict, MatrixError, NotFound
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


def remote_public_rooms(server: str, params: JsonDict) -> JsonDict:
    """Another server's public room directory (``publicRooms?server=``): ``params`` are
    the client's (limit, since, filter, include_all_networks, third_party_instance_id).

    Raises:
        MatrixError: 502 M_UNKNOWN when the server could not be asked or answered nonsense;
            its 4xx refusal otherwise.
    """
    try:
        answer = peers.remote().public_rooms(server, **params)
    except MatrixError as exc:
        if exc.status in (400, 403, 404):
            raise
        raise MatrixError(502, Codes.UNKNOWN, f"{server} did not answer: {exc.msg}") from exc
    except Exception as exc:
        logger.info("Listing the public rooms of %s failed: %s", server, exc)
        raise MatrixError(502, Codes.UNKNOWN, f"Could not ask {server}") from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("chunk"), list):
        raise MatrixError(502, Codes.UNKNOWN, f"{server} answered no room list")
    return answer
