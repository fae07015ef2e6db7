"""What other servers publish, asked on behalf of our clients: their aliases (GET
/query/directory), their room directory (POST /publicRooms)."""

from __future__ import annotations

from federation import peers
from matrixhs.errors import Codes, JsonDict, MatrixError
from matrixhs.protocol.ids import server_name_of


def resolve_remote_alias(alias: str) -> tuple[str, list[str]]:
    """The room ID an alias of another server points to, and the servers to join it
    through (the alias's server first).

    Raises:
        NotFound: the server does not know the alias.
        MatrixError: 502 M_UNKNOWN when it could not be asked or answered nonsense.
    """
    server = server_name_of(alias)
    answer = peers.ask(server, "Room alias", lambda c: c.query_directory(server, alias))
    room_id, servers = answer.get("room_id"), answer.get("servers")
    if not isinstance(room_id, str) or not room_id.startswith("!"):
        raise MatrixError(502, Codes.UNKNOWN, f"{server} answered no room ID for {alias}")
    listed = [s for s in servers if isinstance(s, str)] if isinstance(servers, list) else []
    return room_id, list(dict.fromkeys([server, *listed]))


def remote_public_rooms(server: str, body: JsonDict) -> JsonDict:
    """A page of another server's room directory (``body`` as a client's POST
    /publicRooms, without ``server``).

    Raises:
        MatrixError: the server's error, or 502 M_UNKNOWN when it could not be asked or
            answered something that is not a directory page.
    """
    answer = peers.ask(server, "Room directory", lambda c: c.public_rooms(server, body))
    if not isinstance(answer, dict) or not isinstance(answer.get("chunk"), list):
        raise MatrixError(502, Codes.UNKNOWN, f"{server} answered no room directory")
    return answer
