"""The query parameters of GET /sync, parsed and checked (on a request thread)."""

from __future__ import annotations

from typing import Any

from matrixhs.auth import authenticate
from matrixhs.errors import InvalidParam
from matrixhs.tokens import SyncToken
from sync.classic import SyncRequest
from sync.filters import load_filter
from sync.presence import do_mark_active


def _bool(query: dict[str, str], name: str) -> bool:
    raw = query.get(name, "false")
    if raw not in ("true", "false"):
        raise InvalidParam(f"{name} must be true or false")
    return raw == "true"


def parse_sync_request(request: Any) -> SyncRequest:
    """Check the parameters and mark the user active (``set_presence``, default online).

    Raises:
        MissingToken/UnknownToken, InvalidParam, NotJson, BadJson.
    """
    requester = authenticate(request, required=True)
    query = request.GET
    since = SyncToken.parse(query["since"]) if query.get("since") else None
    sync_filter = load_filter(requester.user, query.get("filter"))
    full_state = _bool(query, "full_state")
    do_mark_active(requester.user, query.get("set_presence", "online"))
    return SyncRequest(
        user=requester.user,
        device_id=requester.device_id,
        since=since,
        full_state=full_state,
        filter=sync_filter,
    )
