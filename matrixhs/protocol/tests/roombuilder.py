"""A linear room for auth-rule tests: builds real, signed PDUs and tracks the state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matrixhs.protocol.event_auth import auth_types_for_event, check_auth
from matrixhs.protocol.events import CREATE_KEY, JsonDict, StateKey, state_key_tuple
from matrixhs.protocol.room_versions import RoomVersion
from matrixhs.protocol.signing import (
    MemoryServerKeys,
    SigningKey,
    build_pdu,
    decode_signing_key,
    verify_key_of,
)

#: The spec appendix's test key ("Cryptographic Test Vectors").
SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
SERVER = "example.com"
ALICE = "@alice:example.com"
BOB = "@bob:example.com"
CHARLIE = "@charlie:example.com"
MALLORY = "@mallory:evil.example"


def appendix_key() -> SigningKey:
    """The appendix signing key, as ``ed25519:1``."""
    return decode_signing_key("ed25519:1", SEED)


class Room:
    """A room whose events follow each other in a single line."""

    def __init__(
        self,
        rv: RoomVersion,
        creator: str = ALICE,
        create_content: Mapping[str, Any] | None = None,
        join_creator: bool = True,
    ) -> None:
        self.rv = rv
        self.key = appendix_key()
        #: The public keys the auth rules may use: the key of example.com, which signs.
        self.keys = MemoryServerKeys()
        self.keys.add(SERVER, verify_key_of(self.key))
        self.ts = 1000
        self.state: dict[StateKey, str] = {}
        self.events: dict[str, JsonDict] = {}
        self.last: list[str] = []
        content: dict[str, Any] = {"room_version": rv.identifier}
        if not rv.implicit_room_creator:
            content["creator"] = creator
        content.update(create_content or {})
        partial: JsonDict = {"type": "m.room.create", "state_key": "", "sender": creator}
        partial["content"] = content
        if not rv.room_id_from_create_event:
            partial["room_id"] = "!room:" + creator.partition(":")[2]
        self.room_id = ""
        self.create_id = self.send_partial(partial)
        self.room_id = self.events[self.create_id].get("room_id") or "!" + self.create_id[1:]
        if join_creator:
            self.send(creator, "m.room.member", {"membership": "join"}, state_key=creator)

    @property
    def create(self) -> JsonDict:
        return self.events[self.create_id]

    def make(
        self,
        sender: str,
        event_type: str,
        content: Mapping[str, Any],
        state_key: str | None = None,
        **extra: Any,
    ) -> tuple[str, JsonDict]:
        """Build (not apply) an event on top of the current state."""
        partial: JsonDict = {
            "type": event_type,
            "sender": sender,
            "content": dict(content),
            "room_id": self.room_id,
            "prev_events": list(self.last),
            "depth": len(self.events) + 1,
            "origin_server_ts": self.ts,
        }
        if state_key is not None:
            partial["state_key"] = state_key
        partial.update(extra)
        keys = auth_types_for_event(partial, self.rv)
        partial.setdefault("auth_events", [self.state[k] for k in sorted(keys) if k in self.state])
        return self.build(partial)

    def build(self, partial: Mapping[str, Any]) -> tuple[str, JsonDict]:
        self.ts += 1
        return build_pdu(partial, SERVER, self.key, self.rv)

    def send_partial(self, partial: Mapping[str, Any]) -> str:
        defaults = {"prev_events": [], "auth_events": [], "depth": 1, "origin_server_ts": self.ts}
        event_id, event = self.build({**defaults, **partial})
        self.apply(event_id, event)
        return event_id

    def auth_map(self, event: Mapping[str, Any]) -> dict[StateKey, JsonDict]:
        """The current state events the auth rules read for ``event`` (create included)."""
        keys = auth_types_for_event(event, self.rv) | {CREATE_KEY}
        return {key: self.events[self.state[key]] for key in keys if key in self.state}

    def check(self, event: Mapping[str, Any]) -> None:
        """Check ``event`` against the current state (raises EventRejected)."""
        check_auth(event, self.auth_map(event), self.rv, self.keys)

    def apply(self, event_id: str, event: JsonDict) -> None:
        self.events[event_id] = event
        key = state_key_tuple(event)
        if key is not None:
            self.state[key] = event_id
        self.last = [event_id]

    def send(
        self,
        sender: str,
        event_type: str,
        content: Mapping[str, Any],
        state_key: str | None = None,
        **extra: Any,
    ) -> str:
        """Build, auth-check and apply an event; returns its ID."""
        event_id, event = self.make(sender, event_type, content, state_key, **extra)
        self.check(event)
        self.apply(event_id, event)
        return event_id

    def join(self, user: str, **content: Any) -> str:
        return self.send(user, "m.room.member", {"membership": "join", **content}, user)

    def set_power_levels(self, users: Mapping[str, int], **content: Any) -> str:
        creator = self.create["sender"]
        return self.send(creator, "m.room.power_levels", {"users": dict(users), **content}, "")

    def set_join_rule(self, join_rule: str, **content: Any) -> str:
        creator = self.create["sender"]
        return self.send(creator, "m.room.join_rules", {"join_rule": join_rule, **content}, "")
