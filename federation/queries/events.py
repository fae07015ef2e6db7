"""Reading the room graph for other servers: state at an event, auth chains, PDUs."""

from __future__ import annotations

from collections.abc import Iterable

from matrixhs.errors import JsonDict
from matrixhs.protocol.room_versions import get_room_version
from matrixhs.protocol.state_res import auth_chain
from rooms.events import StoredEvents, load_pdus
from rooms.models import Room
from rooms.state import StateMap


def auth_chain_ids(room: Room, event_ids: Iterable[str]) -> set[str]:
    """The auth chain of the events (their auth events, recursively), without them."""
    rv = get_room_version(room.room_version)
    return auth_chain(rv, list(event_ids), StoredEvents(room))


def pdus_in_order(event_ids: Iterable[str]) -> list[JsonDict]:
    """The stored PDUs, oldest (lowest depth) first, as sent over federation."""
    pdus = load_pdus(event_ids)
    return sorted(pdus.values(), key=lambda p: (p.get("depth", 0), p.get("origin_server_ts", 0)))


def state_and_auth_chain(room: Room, state: StateMap, also: Iterable[str] = ()) -> JsonDict:
    """``state`` and ``auth_chain`` as send_join and /state answer them: the state's
    events, and the auth chain of those (and of ``also``) minus the state itself."""
    state_ids = set(state.values())
    chain = auth_chain_ids(room, [*state_ids, *also]) - state_ids
    return {"state": pdus_in_order(state_ids), "auth_chain": pdus_in_order(chain)}
