"""Profiles of other servers' users, asked of their server (GET /query/profile)."""

from __future__ import annotations

import logging
from typing import Any

from federation import peers
from matrixhs.errors import Codes, JsonDict, MatrixError, NotFound
from matrixhs.protocol.ids import server_name_of

logger = logging.getLogger(__name__)


def remote_profile(user_id: str, field: str | None = None) -> JsonDict:
    """The profile (or one field of it) of a user of another server.

    Raises:
        NotFound: their server knows no such user (or field).
        MatrixError: 502 M_UNKNOWN when the server could not be asked or answered nonsense.
    """
    server = server_name_of(user_id)
    try:
        answer: Any = peers.remote().query_profile(server, user_id, field)
    except MatrixError as exc:
        if exc.status == 404:
            raise NotFound("Profile was not found") from exc
        raise MatrixError(502, Codes.UNKNOWN, f"{server} did not answer: {exc.msg}") from exc
    except Exception as exc:
        logger.info("Asking %s for the profile of %s failed: %s", server, user_id, exc)
        raise MatrixError(502, Codes.UNKNOWN, f"Could not ask {server}") from exc
    if not isinstance(answer, dict):
        raise MatrixError(502, Codes.UNKNOWN, f"{server} answered no profile")
    # displayname and avatar_url must be strings; other (extended) fields pass as given.
    return {
        key: value
        for key, value in answer.items()
        if key not in ("displayname", "avatar_url") or isinstance(value, str)
    }
