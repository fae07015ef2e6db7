"""Spaces and room previews: GET /v1/rooms/{roomId}/hierarchy (spec "Spaces"), the rooms
of a space and of its sub-spaces, depth first as the spec says (a room, then each of its
children's subtrees in the children's order), each once, that the user may see (joined
or invited, world-readable, or joinable: public, knockable, or restricted to a room they
are in), and GET /v1/room_summary/{roomIdOrAlias}, by the same rule of who may see.

Rooms this server does not know are left out (it does not ask other servers yet).
"""

from __future__ import annotations

import re

from matrixhs.errors import Forbidden, InvalidParam, JsonDict, NotFound
from matrixhs.protocol.events import EventTypes
from rooms.events import load_pdus
from rooms.models import CurrentStateEvent, Room, RoomMembership
from rooms.queries.directory import room_summaries

SPACE_CHILD = "m.space.child"
#: Rooms a hierarchy answer covers at most (its pages included).
MAX_ROOMS = 1000
MAX_LIMIT = 100
DEFAULT_LIMIT = 50
_JOINABLE = ("public", "knock")
_RESTRICTED = ("restricted", "knock_restricted")
#: next_batch: the offset into the walk, and the max_depth and suggested_only it was made
#: with, which a later page must not change (spec: 400 M_INVALID_PARAM).
_TOKEN = re.compile(r"h(\d{1,9})_(\d{0,20})_([01])")


def _child_events(rooms: list[Room]) -> dict[int, list[JsonDict]]:
    """Each room's m.space.child state events with a ``via`` (the others are removed
    children), in the spec's order: ``order``, then timestamp, then room ID."""
    rows = CurrentStateEvent.objects.filter(room__in=rooms, type=SPACE_CHILD).values_list(
        "room_id", "event_id"
    )
    pdus = load_pdus(event_id for _, event_id in rows)
    children: dict[int, list[JsonDict]] = {}
    for room_pk, event_id in rows:
        pdu = pdus.get(event_id)
        content = pdu.get("content") if pdu else None
        if not isinstance(content, dict) or not isinstance(content.get("via"), list):
            continue
        if not content["via"] or not isinstance(pdu.get("state_key"), str):
            continue
        children.setdefault(room_pk, []).append(pdu)

    def order_key(pdu: JsonDict) -> tuple[int, str, int, str]:
        order = pdu["content"].get("order")
        valid = (
            isinstance(order, str)
            and len(order) <= 50
            and all(0x20 <= ord(c) <= 0x7E for c in order)
        )
        return (
            0 if valid else 1,
            order if valid else "",
            pdu.get("origin_server_ts", 0),
            pdu["state_key"],
        )

    return {pk: sorted(events, key=order_key) for pk, events in children.items()}


def _stripped(pdu: JsonDict) -> JsonDict:
    return {
        "type": pdu["type"],
        "state_key": pdu["state_key"],
        "content": pdu["content"],
        "sender": pdu["sender"],
        "origin_server_ts": pdu["origin_server_ts"],
    }


def _may_see(user_id: str, summary: JsonDict, membership: str | None, allowed: list[str]) -> bool:
    if membership in ("join", "invite") or summary["world_readable"]:
        return True
    rule = summary["join_rule"]
    if rule in _JOINABLE:
        return True
    if rule in _RESTRICTED:
        return RoomMembership.objects.filter(
            room__room_id__in=allowed, user_id=user_id, membership="join"
        ).exists()
    return False


def _allowed_rooms(room: Room) -> list[str]:
    row = CurrentStateEvent.objects.filter(room=room, type=EventTypes.JOIN_RULES, state_key="")
    event_id = row.values_list("event_id", flat=True).first()
    content = load_pdus([event_id]).get(event_id, {}).get("content", {}) if event_id else {}
    allow = content.get("allow") if isinstance(content, dict) else None
    return [
        entry["room_id"]
        for entry in (allow if isinstance(allow, list) else [])
        if isinstance(entry, dict) and isinstance(entry.get("room_id"), str)
    ]


def space_hierarchy(
    user_id: str,
    root_id: str,
    limit: int | None,
    max_depth: int | None,
    suggested_only: bool,
    from_token: str | None,
) -> JsonDict:
    """The body of GET /hierarchy.

    Raises:
        Forbidden: the user may not see the root room (or it is unknown here).
        InvalidParam: a ``from`` token this server did not issue, or one issued for
            another ``max_depth`` or ``suggested_only``.
    """
    params = f"{'' if max_depth is None else max_depth}_{int(suggested_only)}"
    offset = 0
    if from_token is not None:
        match = _TOKEN.fullmatch(from_token)
        if match is None:
            raise InvalidParam("Invalid from token")
        if f"{match[2]}_{match[3]}" != params:
            raise InvalidParam("suggested_only and max_depth cannot change on paginated requests")
        offset = int(match[1])
    limit = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
    found = _walk(user_id, root_id, max_depth, suggested_only)
    page = found[offset : offset + limit]
    body: JsonDict = {"rooms": page}
    if offset + limit < len(found):
        body["next_batch"] = f"h{offset + limit}_{params}"
    return body


def _walk(
    user_id: str, root_id: str, max_depth: int | None, suggested_only: bool
) -> list[JsonDict]:
    """The rooms of the space in depth-first order (at most MAX_ROOMS), with their
    children_state.

    Raises:
        Forbidden: the user may not see the root room (or it is unknown here).
    """
    found: list[JsonDict] = []
    seen: set[str] = set()
    # (room ID, depth): a stack, whose top is the next room in the walk.
    stack: list[tuple[str, int]] = [(root_id, 0)]
    while stack and len(found) < MAX_ROOMS:
        room_id, depth = stack.pop()
        if room_id in seen:
            continue
        seen.add(room_id)
        room = Room.objects.filter(room_id=room_id).first()
        if room is None:
            if depth == 0:
                raise Forbidden("You may not see this space")
            continue
        [summary] = room_summaries([room])
        membership = (
            RoomMembership.objects.filter(room=room, user_id=user_id)
            .values_list("membership", flat=True)
            .first()
        )
        if not _may_see(user_id, summary, membership, _allowed_rooms(room)):
            if depth == 0:
                raise Forbidden("You may not see this space")
            continue
        children = _child_events([room]).get(room.pk, [])
        if suggested_only:
            children = [c for c in children if c["content"].get("suggested") is True]
        summary["children_state"] = [_stripped(c) for c in children]
        found.append(summary)
        if max_depth is None or depth < max_depth:
            # Reversed onto the stack, so that the first child is walked next.
            stack.extend((child["state_key"], depth + 1) for child in reversed(children))
    return found


def room_summary(user_id: str | None, room_id: str) -> JsonDict:
    """GET /room_summary/{roomIdOrAlias}: what the user may know of a room before joining.

    Raises:
        NotFound: unknown here, or not a room the user may see.
    """
    room = Room.objects.filter(room_id=room_id).first()
    if room is None:
        raise NotFound("Room not found")
    [summary] = room_summaries([room])
    membership = None
    if user_id is not None:
        membership = (
            RoomMembership.objects.filter(room=room, user_id=user_id)
            .values_list("membership", flat=True)
            .first()
        )
    allowed = _allowed_rooms(room)
    if user_id is None:
        visible = summary["world_readable"] or summary["join_rule"] in _JOINABLE
    else:
        visible = _may_see(user_id, summary, membership, allowed)
    if not visible:
        raise NotFound("Room not found")
    summary["room_version"] = room.room_version
    summary["membership"] = membership or "leave"
    if summary["join_rule"] in _RESTRICTED:
        summary["allowed_room_ids"] = allowed
    row = CurrentStateEvent.objects.filter(room=room, type=EventTypes.ENCRYPTION, state_key="")
    event_id = row.values_list("event_id", flat=True).first()
    if event_id is not None:
        algorithm = load_pdus([event_id]).get(event_id, {}).get("content", {}).get("algorithm")
        if algorithm == "m.megolm.v1.aes-sha2":
            summary["encryption"] = algorithm
    return summary
