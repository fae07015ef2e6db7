"""Events other servers send us: the checks that need the network, then rooms/events.py.

For each PDU (server-server API "Checks performed on receipt of a PDU"): a valid event
of its room's version (else dropped), signed by every server that must sign it (else
dropped), with the right content hash (else its redacted form is used), its auth events
fetched when we lack them (stored as outliers, each checked with its own auth events),
its missing prev events fetched with get_missing_events, and, if a gap remains, the
state at those prev events asked of the origin. rooms/events.py then applies the auth
rules (reject / soft-fail) and stores it.

The network is reached through a ``Remote`` and signatures are checked by a
``Verifier``, so that both can be replaced in tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from matrixhs.errors import JsonDict
from matrixhs.protocol.event_auth import EventRejected
from matrixhs.protocol.events import (
    InvalidEvent,
    auth_event_ids,
    check_pdu_format,
    prev_event_ids,
    state_key_tuple,
)
from matrixhs.protocol.hashing import check_content_hash, compute_event_id
from matrixhs.protocol.redaction import redact_event
from matrixhs.protocol.room_versions import RoomVersion, get_room_version
from matrixhs.protocol.signing import InvalidSignature
from rooms import events as room_events
from rooms.models import Event, ForwardExtremity, Room
from rooms.state import StateMap, state_of_group

logger = logging.getLogger(__name__)

#: How many events a get_missing_events call asks for (Synapse asks for 10).
MISSING_EVENTS_LIMIT = 10


class Remote(Protocol):
    """What inbound processing asks of other servers (federation.queries.remote)."""

    def get_missing_events(
        self,
        destination: str,
        room_id: str,
        earliest: list[str],
        latest: list[str],
        limit: int,
        min_depth: int,
    ) -> list[JsonDict]: ...

    def state_ids(
        self, destination: str, room_id: str, event_id: str
    ) -> tuple[list[str], list[str]]:
        """(state event IDs, auth chain event IDs) at the event (before it)."""
        ...

    def event(self, destination: str, event_id: str) -> JsonDict | None: ...

    def event_auth(self, destination: str, room_id: str, event_id: str) -> list[JsonDict]: ...


Verifier = Callable[[JsonDict, RoomVersion], None]
"""Checks every signature an event needs; raises InvalidSignature."""


class Dropped(Exception):
    """The event is not valid or not signed as it must be: it is not stored at all."""


@dataclass
class Inbound:
    """Processing of events from ``origin`` into one room."""

    origin: str
    room: Room
    remote: Remote
    verify: Verifier

    @property
    def rv(self) -> RoomVersion:
        return get_room_version(self.room.room_version)

    # --- one event ---------------------------------------------------------------------

    def checked(self, pdu: Any) -> tuple[str, JsonDict]:
        """Steps 1-3: format, signatures, content hash. Returns (event ID, the event as
        it is to be stored).

        Raises:
            Dropped: malformed, in another room, or badly signed.
        """
        if not isinstance(pdu, dict):
            raise Dropped("not an object")
        pdu = {k: v for k, v in pdu.items() if k != "unsigned"}
        rv = self.rv
        try:
            check_pdu_format(pdu, rv)
        except InvalidEvent as exc:
            raise Dropped(f"invalid event: {exc}") from exc
        if pdu.get("room_id", self.room.room_id) != self.room.room_id:
            raise Dropped("the event is in another room")
        try:
            self.verify(pdu, rv)
        except InvalidSignature as exc:
            raise Dropped(f"bad signature: {exc}") from exc
        event_id = compute_event_id(pdu, rv)
        if not check_content_hash(pdu, rv):
            logger.info("Content hash mismatch on %s from %s: redacting", event_id, self.origin)
            pdu = redact_event(pdu, rv)
        return event_id, pdu

    def receive(self, pdu: Any, fill_gaps: bool = True) -> room_events.Outcome:
        """Process one PDU of a transaction (or of a get_missing_events answer).

        Raises:
            Dropped: see ``checked``.
        """
        event_id, pdu = self.checked(pdu)
        if room_events.events_with_state(self.room, [event_id]):
            return room_events.Outcome(event_id, already_known=True)
        self._fetch_auth_events(event_id, pdu)
        state: StateMap | None = None
        missing = self._missing_prevs(pdu)
        if missing and fill_gaps:
            self._fetch_missing_prevs(event_id, pdu)
            missing = self._missing_prevs(pdu)
        if missing:
            state = self._state_at_prevs(pdu, missing)
        try:
            return room_events.persist_federated_event(
                self.room.room_id, event_id, pdu, state, gap=bool(missing)
            )
        except room_events.StateUnknown as exc:
            raise Dropped("the state before the event could not be found") from exc

    def receive_backfilled(self, pdus: Iterable[Any]) -> int:
        """Store history from before the oldest events we have (a /backfill answer),
        oldest first, each with the state before it; returns how many were stored."""
        batch: dict[str, JsonDict] = {}
        for pdu in pdus:
            try:
                event_id, event = self.checked(pdu)
            except Dropped as exc:
                logger.info("Dropped a backfilled event from %s: %s", self.origin, exc)
                continue
            batch[event_id] = event
        known = room_events.events_with_state(self.room, batch)
        stored = 0
        for event_id, event in _topological(batch, prev_event_ids):
            if event_id in known:
                continue
            self._fetch_auth_events(event_id, event)
            missing = self._missing_prevs(event)
            state = self._state_at_prevs(event, missing) if missing else None
            if missing and state is None:
                logger.info("No state before backfilled %s: left out", event_id)
                continue
            try:
                outcome = room_events.persist_federated_event(
                    self.room.room_id, event_id, event, state, backfilled=True
                )
            except room_events.StateUnknown:
                continue
            stored += outcome.accepted
        return stored

    # --- auth events -------------------------------------------------------------------

    def _fetch_auth_events(self, event_id: str, pdu: JsonDict) -> None:
        wanted = auth_event_ids(pdu, self.rv)
        if not set(wanted) - room_events.known_event_ids(wanted):
            return
        try:
            chain = self.remote.event_auth(self.origin, self.room.room_id, event_id)
        except Exception as exc:
            logger.info("Could not fetch the auth chain of %s: %s", event_id, exc)
            return
        self.store_outliers(chain)

    def store_outliers(self, pdus: Iterable[Any]) -> dict[str, room_events.Outcome]:
        """Check and store events outside the timeline, auth events first (those that
        fail steps 1-3 are left out)."""
        checked: dict[str, JsonDict] = {}
        for pdu in pdus:
            try:
                event_id, event = self.checked(pdu)
            except Dropped as exc:
                logger.info("Dropped an outlier from %s: %s", self.origin, exc)
                continue
            checked[event_id] = event
        ordered = _auth_order(checked, self.rv)
        return room_events.persist_outliers(self.room.room_id, ordered)

    # --- prev events -------------------------------------------------------------------

    def _missing_prevs(self, pdu: JsonDict) -> list[str]:
        prevs = prev_event_ids(pdu)
        return sorted(set(prevs) - room_events.events_with_state(self.room, prevs))

    def _fetch_missing_prevs(self, event_id: str, pdu: JsonDict) -> None:
        extremities = list(
            ForwardExtremity.objects.filter(room=self.room).values_list("event_id", "depth")
        )
        min_depth = min((depth for _, depth in extremities), default=0)
        try:
            found = self.remote.get_missing_events(
                self.origin,
                self.room.room_id,
                earliest=[e for e, _ in extremities],
                latest=[event_id],
                limit=MISSING_EVENTS_LIMIT,
                min_depth=min_depth,
            )
        except Exception as exc:
            logger.info("get_missing_events for %s failed: %s", event_id, exc)
            return
        batch = {}
        for candidate in found:
            try:
                batch[compute_event_id(candidate, self.rv)] = candidate
            except Exception as exc:
                logger.info("Dropped a malformed missing event from %s: %s", self.origin, exc)
        for _, missing in _topological(batch, prev_event_ids):
            try:
                self.receive(missing, fill_gaps=False)
            except Dropped as exc:
                logger.info("Dropped a missing event from %s: %s", self.origin, exc)

    def _state_at_prevs(self, pdu: JsonDict, missing: list[str]) -> StateMap | None:
        """The state before an event some of whose prev events we lack: the state after
        each prev event (asked of the origin for the missing ones), resolved."""
        states: list[StateMap] = []
        for prev in prev_event_ids(pdu):
            if prev in missing:
                state = self._state_after_remote_event(prev)
                if state is None:
                    return None
                states.append(state)
                continue
            group = Event.objects.filter(event_id=prev).values_list("state_group_id", flat=True)
            states.append(state_of_group(group.first()))
        if len(states) == 1:
            return states[0]
        return room_events.resolve_states(self.room, states)

    def _state_after_remote_event(self, event_id: str) -> StateMap | None:
        try:
            state_ids, auth_ids = self.remote.state_ids(self.origin, self.room.room_id, event_id)
        except Exception as exc:
            logger.info("state_ids at %s failed: %s", event_id, exc)
            return None
        wanted = {event_id, *state_ids, *auth_ids}
        unknown = wanted - room_events.known_event_ids(wanted)
        fetched = []
        for missing_id in sorted(unknown):
            try:
                pdu = self.remote.event(self.origin, missing_id)
            except Exception as exc:
                logger.info("Could not fetch %s: %s", missing_id, exc)
                return None
            if pdu is not None:
                fetched.append(pdu)
        self.store_outliers(fetched)
        pdus = room_events.load_pdus(wanted)
        if set(state_ids) - pdus.keys() or event_id not in pdus:
            return None
        state: dict[tuple[str, str], str] = {}
        for state_id in state_ids:
            key = state_key_tuple(pdus[state_id])
            if key is not None:
                state[key] = state_id
        key = state_key_tuple(pdus[event_id])
        if key is not None:
            state[key] = event_id
        return state


def _auth_order(events: dict[str, JsonDict], rv: RoomVersion) -> list[tuple[str, JsonDict]]:
    """The events with each one after the auth events it cites among them."""
    return _topological(events, lambda pdu: auth_event_ids(pdu, rv))


def _topological(
    events: dict[str, JsonDict], parents: Callable[[JsonDict], list[str]]
) -> list[tuple[str, JsonDict]]:
    """The events with each one after its ``parents`` among them (claimed depth breaks
    ties; a cycle, which only a broken server can make, is cut anywhere)."""
    ordered: list[tuple[str, JsonDict]] = []
    placed: set[str] = set()

    def depth(event_id: str) -> int:
        value = events[event_id].get("depth")
        return value if isinstance(value, int) else 0

    for start in sorted(events, key=depth):
        stack = [(start, False)]
        visiting: set[str] = set()
        while stack:
            event_id, expanded = stack.pop()
            if event_id in placed:
                continue
            if expanded:
                placed.add(event_id)
                ordered.append((event_id, events[event_id]))
                continue
            if event_id in visiting:
                continue
            visiting.add(event_id)
            stack.append((event_id, True))
            for parent in parents(events[event_id]):
                if parent in events and parent not in placed:
                    stack.append((parent, False))
    return ordered


def receive_pdus(
    origin: str, pdus: Sequence[Any], remote: Remote, verify: Verifier
) -> dict[str, JsonDict]:
    """The PDUs of a transaction, each processed in order: {event_id: {} or {"error"}}."""
    results: dict[str, JsonDict] = {}
    for pdu in pdus:
        room_id = pdu.get("room_id") if isinstance(pdu, dict) else None
        room = Room.objects.filter(room_id=room_id).first() if isinstance(room_id, str) else None
        if room is None:
            logger.info("PDU from %s for a room we are not in: %s", origin, room_id)
            continue
        inbound = Inbound(origin, room, remote, verify)
        try:
            outcome = inbound.receive(pdu)
        except Dropped as exc:
            event_id = _event_id_or_none(pdu, inbound.rv)
            if event_id is not None:
                results[event_id] = {"error": str(exc)}
            continue
        except EventRejected as exc:  # pragma: no cover - persist stores rejections
            results[_event_id_or_none(pdu, inbound.rv) or ""] = {"error": exc.reason}
            continue
        results[outcome.event_id] = (
            {"error": f"rejected: {outcome.rejected_reason}"} if outcome.rejected_reason else {}
        )
    return results


def _event_id_or_none(pdu: JsonDict, rv: RoomVersion) -> str | None:
    try:
        return compute_event_id(pdu, rv)
    except Exception:
        return None
