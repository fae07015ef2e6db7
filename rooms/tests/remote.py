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


class RemoteRoom:
    """A room that lives on a pretend remote server only: its graph, its state after each
    event, and the server's answers to the federation calls we make about it."""

    def __init__(
        self,
        server: RemoteServer,
        version: str = "11",
        join_rule: str = "public",
        name: str = "Over there",
        creator: str = "carol",
    ) -> None:
        self.server = server
        self.rv = get_room_version(version)
        self.events: dict[str, JsonDict] = {}
        self.state: dict[tuple[str, str], str] = {}
        self.state_before: dict[str, dict[tuple[str, str], str]] = {}
        self.tips: list[str] = []
        self.creator = server.user(creator)
        create_partial: JsonDict = {
            "type": "m.room.create",
            "state_key": "",
            "sender": self.creator,
            "content": {"room_version": version},
            "prev_events": [],
            "auth_events": [],
            "depth": 1,
            "origin_server_ts": 1_700_000_000_000,
        }
        if not self.rv.room_id_from_create_event:
            create_partial["room_id"] = f"!remote{id(self)}:{server.name}"
        if not self.rv.implicit_room_creator:
            create_partial["content"]["creator"] = self.creator
        create_id, create = build_pdu(create_partial, server.name, server.key, self.rv)
        self.room_id = (
            "!" + create_id[1:] if self.rv.room_id_from_create_event else create_partial["room_id"]
        )
        self._store(create_id, create)
        self.add("m.room.member", self.creator, {"membership": "join"}, state_key=self.creator)
        self.add(
            "m.room.power_levels",
            self.creator,
            {"users": {self.creator: 100}, "users_default": 0, "invite": 0},
            state_key="",
        )
        self.add("m.room.join_rules", self.creator, {"join_rule": join_rule}, state_key="")
        self.add(
            "m.room.history_visibility",
            self.creator,
            {"history_visibility": "shared"},
            state_key="",
        )
        self.add("m.room.name", self.creator, {"name": name}, state_key="")

    def _store(self, event_id: str, pdu: JsonDict) -> None:
        self.state_before[event_id] = dict(self.state)
        self.events[event_id] = pdu
        if "state_key" in pdu:
            self.state[(pdu["type"], pdu["state_key"])] = event_id
        self.tips = [event_id]

    def add(
        self, event_type: str, sender: str, content: JsonDict, state_key: str | None = None
    ) -> tuple[str, JsonDict]:
        partial: JsonDict = {
            "type": event_type,
            "sender": sender,
            "content": content,
            "room_id": self.room_id,
            "prev_events": list(self.tips),
            "depth": max(self.events[t]["depth"] for t in self.tips) + 1,
            "origin_server_ts": 1_700_000_000_000 + len(self.events),
        }
        if state_key is not None:
            partial["state_key"] = state_key
        keys = auth_types_for_event(partial, self.rv)
        if self.rv.room_id_from_create_event:
            keys.discard(CREATE_KEY)
        partial["auth_events"] = sorted(self.state[k] for k in keys if k in self.state)
        event_id, pdu = build_pdu(partial, self.server.name, self.server.key, self.rv)
        self._store(event_id, pdu)
        return event_id, pdu

    def accept(self, event_id: str, pdu: JsonDict) -> None:
        """An event another server sent into the room (a join through send_join...)."""
        self._store(event_id, pdu)

    def auth_chain(self, event_ids: list[str]) -> set[str]:
        from matrixhs.protocol.events import auth_event_ids

        seen: set[str] = set()
        todo = [a for e in event_ids for a in auth_event_ids(self.events[e], self.rv)]
        while todo:
            current = todo.pop()
            if current in seen or current not in self.events:
                continue
            seen.add(current)
            todo.extend(auth_event_ids(self.events[current], self.rv))
        return seen

    # --- the remote server's answers --------------------------------------------------------

    def make_membership(
        self, destination: str, room_id: str, user_id: str, membership: str, versions: list[str]
    ) -> JsonDict:
        partial: JsonDict = {
            "type": "m.room.member",
            "sender": user_id,
            "state_key": user_id,
            "content": {"membership": membership},
            "room_id": self.room_id,
            "prev_events": list(self.tips),
            "depth": max(self.events[t]["depth"] for t in self.tips) + 1,
            "origin_server_ts": 1,
            "origin": self.server.name,
        }
        keys = auth_types_for_event(partial, self.rv)
        if self.rv.room_id_from_create_event:
            keys.discard(CREATE_KEY)
        partial["auth_events"] = sorted(self.state[k] for k in keys if k in self.state)
        return {"event": partial, "room_version": self.rv.identifier}

    def send_membership(
        self, destination: str, room_id: str, event_id: str, pdu: JsonDict, membership: str
    ) -> JsonDict:
        before = dict(self.state)
        self.accept(event_id, pdu)
        if membership != "join":
            return {}
        state_ids = list(before.values())
        chain = self.auth_chain([*state_ids, event_id]) - set(state_ids)
        return {
            "origin": self.server.name,
            "state": [self.events[e] for e in state_ids],
            "auth_chain": [self.events[e] for e in chain],
            "members_omitted": False,
        }

    def invite(
        self,
        destination: str,
        room_id: str,
        event_id: str,
        pdu: JsonDict,
        room_version: str,
        invite_room_state: list[JsonDict],
    ) -> JsonDict:
        from matrixhs.protocol.signing import sign_event

        self.invited_with = invite_room_state
        return {
            "event": sign_event(
                pdu, self.server.name, self.server.key, get_room_version(room_version)
            )
        }

    def get_missing_events(
        self,
        destination: str,
        room_id: str,
        earliest: list[str],
        latest: list[str],
        limit: int,
        min_depth: int,
    ) -> list[JsonDict]:
        found: list[JsonDict] = []
        seen, frontier = set(earliest), list(latest)
        while frontier and len(found) < limit:
            current = self.events.get(frontier.pop(0))
            for prev in (current or {}).get("prev_events", []):
                if prev not in seen and prev in self.events:
                    seen.add(prev)
                    found.append(self.events[prev])
                    frontier.append(prev)
        return found[:limit]

    def state_ids(
        self, destination: str, room_id: str, event_id: str
    ) -> tuple[list[str], list[str]]:
        state = list(self.state_before[event_id].values())
        return state, sorted(self.auth_chain(state))

    def event(self, destination: str, event_id: str) -> JsonDict | None:
        return self.events.get(event_id)

    def backfill(
        self, destination: str, room_id: str, event_ids: list[str], limit: int
    ) -> list[JsonDict]:
        """The events ``event_ids`` and those before them, newest first."""
        found: list[JsonDict] = []
        seen: set[str] = set()
        frontier = sorted(
            (e for e in event_ids if e in self.events), key=lambda e: -self.events[e]["depth"]
        )
        while frontier and len(found) < limit:
            current = frontier.pop(0)
            if current in seen:
                continue
            seen.add(current)
            found.append(self.events[current])
            frontier.extend(self.events[current]["prev_events"])
            frontier.sort(key=lambda e: -self.events[e]["depth"] if e in self.events else 0)
        return found

    def event_auth(self, destination: str, room_id: str, event_id: str) -> list[JsonDict]:
        return [self.events[e] for e in self.auth_chain([event_id])]
