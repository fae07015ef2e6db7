"""Profiles of users of other servers, asked of their server (GET /query/profile)."""

from __future__ import annotations

from federation import peers
from matrixhs.errors import Codes, JsonDict, MatrixError
from matrixhs.protocol.ids import server_name_of

PROFILE_FIELDS = ("displayname", "avatar_url")


def remote_profile(user_id: str, field: str | None = None) -> JsonDict:
    """The profile of a user of another server (one field of it when ``field`` is
    given), as their server answers it.

    Raises:
        NotFound: their server knows no such user (or field).
        MatrixError: 502 M_UNKNOWN when it could not be asked or answered nonsense.
    """
    server = server_name_of(user_id)
    answer = peers.ask(server, "Profile", lambda c: c.query_profile(server, user_id, field))
    if not isinstance(answer, dict):
        raise MatrixError(502, Codes.UNKNOWN, f"{server} answered no profile")
    return {k: v for k, v in answer.items() if isinstance(v, str) or k not in PROFILE_FIELDS}
