"""Simplified sliding sync (MSC4186), as Element X and matrix-rust-sdk speak it:
POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync?pos=&timeout=

The client names lists (a range over its rooms, most recently active first, narrowed by
filters) and room subscriptions, each with a timeline limit and the state it wants
(``required_state``: ``[type, state_key]`` pairs with ``*``, ``$LAZY`` and ``$ME``).
A room goes down when it was never sent on this connection, or when something happened
in it since it was; extensions carry to-device messages, E2EE data, account data,
receipts and typing. What the connection has been sent is kept per ``pos`` (sync/models.py),
so a client may retry a request with the same ``pos``.
"""

from __future__ import annotations

from accounts.queries import ignored_users
from matrixhs.errors import JsonDict
from matrixhs.tokens import current_token
from sync.connections import ConnectionState, load_connection, save_connection
from sync.sliding.extensions import build_extensions
from sync.sliding.lists import room_list, select_rooms
from sync.sliding.request import SlidingRequest, parse_request
from sync.sliding.rooms import build_rooms

__all__ = ["SlidingRequest", "parse_request", "sliding_sync"]


# --- one response ---------------------------------------------------------------------------


def sliding_sync(request: SlidingRequest) -> tuple[JsonDict, bool, int | None]:
    """One response: ``(body, has_news, wake_at_ms)``. Writes the connection's new position.

    Raises:
        MatrixError: 400 M_UNKNOWN_POS when ``pos`` names no position of this connection.
    """
    previous = load_connection(request.user, request.device_id or "", request.conn_id, request.pos)
    now = current_token()
    ignored = ignored_users(request.user)
    entries = room_list(request.user, now, set(previous.rooms) if previous else set(), ignored)
    lists, chosen = select_rooms(request, entries)
    rooms_out, sent = build_rooms(request, chosen, previous, now, ignored)
    matched_rooms = [entry.room for entry, _, _ in chosen.values()]
    initial = {room_id for room_id, room in rooms_out.items() if room.get("initial")}
    extensions, news, expiry = build_extensions(request, previous, now, matched_rooms, initial)
    has_news = previous is None or bool(rooms_out) or news
    if has_news or request.pos is None:
        pos = save_connection(
            request.user,
            request.device_id or "",
            request.conn_id,
            request.pos,
            ConnectionState(now, sent),
        )
    else:
        pos = request.pos  # nothing was sent: the client may carry on from where it was
    body: JsonDict = {"pos": pos, "lists": lists, "rooms": rooms_out, "extensions": extensions}
    return body, has_news, expiry
