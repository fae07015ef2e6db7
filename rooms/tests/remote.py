"""A pretend remote homeserver for tests: it builds signed PDUs for a room we know, as a
real server would (auth events chosen from the state it names, prev events given)."""

from __future__ import annotations

from typing import Any

from matrixhs.errors import JsonDict
from matrixhs.protocol.event_auth import auth_types_for_event
from matrixhs.protocol.events import CREATE_KEY
from matrixhs.protocol.room_versions import get_room_version
from matrixhs.protocol.signing import build_pdu, generate_signing_key
from rooms.events import current_state_ids, load_pdus
from rooms.models import Event, ForwardExtremity, Room
from rooms.state import state_of_group


class RemoteServer:
    def __init__(self, name: str = "remote.example") -> None:
        self.name = name
        self.key = generate_signing_key("a_test")
        #: Every event this server built, by ID (it knows their depths).
        self.built: dict[str, JsonDict] = {}

    def user(self, localpart: str) -> str:
        return f"@{localpart}:{self.name}"

    def event(
        self,
        room_id: str,
        event_type: str,
        sender: str,
        content: dict[str, Any],
        state_key: str | None = None,
        prev_events: list[str] | None = None,
        state: dict[tuple[str, str], str] | None = None,
        depth: int | None = None,
        ts: int = 1_700_000_000_000,
        **extra: Any,
    ) -> tuple[str, JsonDict]:
        """A signed PDU. Its prev events default to the room's forward extremities here,
        its auth events come from ``state`` (default: the state after its prev events,
        or the room's current state)."""
        room = Room.objects.get(room_id=room_id)
        rv = get_room_version(room.room_version)
        if prev_events is None:
            prev_events = list(
                ForwardExtremity.objects.filter(room=room).values_list("event_id", flat=True)
            )
        if state is None:
            state = self.state_after(room, prev_events)
        partial: JsonDict = {
            "type": event_type,
            "sender": sender,
            "content": content,
            "room_id": room_id,
            "prev_events": prev_events,
            "depth": depth if depth is not None else self._depth(prev_events),
            "origin_server_ts": ts,
            **extra,
        }
        if state_key is not None:
            partial["state_key"] = state_key
        keys = auth_types_for_event(partial, rv)
        if rv.room_id_from_create_event:
            keys.discard(CREATE_KEY)
        partial["auth_events"] = sorted(state[k] for k in keys if k in state)
        event_id, pdu = build_pdu(partial, self.name, self.key, rv)
        self.built[event_id] = pdu
        return event_id, pdu

    @staticmethod
    def state_after(room: Room, event_ids: list[str]) -> dict[tuple[str, str], str]:
        if len(event_ids) == 1:
            row = Event.objects.filter(event_id=event_ids[0]).first()
            if row is not None and row.state_group_id is not None:
                return state_of_group(row.state_group_id)
        return current_state_ids(room)

    def _depth(self, prev_events: list[str]) -> int:
        pdus = {
            **load_pdus(prev_events),
            **{e: self.built[e] for e in prev_events if e in self.built},
        }
        return max((p["depth"] for p in pdus.values()), default=0) + 1


def sign_template(
    server: RemoteServer, template: JsonDict, rv_id: str, **content: Any
) -> tuple[str, JsonDict]:
    """What a joining server does with a make_join/make_leave/make_knock template."""
    from matrixhs.protocol.events import auth_event_ids, prev_event_ids

    rv = get_room_version(rv_id)
    partial = {k: v for k, v in template.items() if k not in ("origin", "hashes", "signatures")}
    partial["prev_events"] = prev_event_ids(template)
    partial["auth_events"] = auth_event_ids(template, rv, include_create=False)
    partial["content"] = {**template["content"], **content}
    return build_pdu(partial, server.name, server.key, rv)
