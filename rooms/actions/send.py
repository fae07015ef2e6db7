"""Sending events: messages, state and redactions, with client transaction IDs."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.queries import Requester
from matrixhs.errors import BadJson, Codes, Forbidden, InvalidParam, JsonDict, MatrixError
from matrixhs.protocol.events import CREATE_KEY, EventTypes
from matrixhs.protocol.ids import InvalidIdentifier, parse_room_alias, server_name_of
from matrixhs.protocol.power_levels import get_creators
from matrixhs.protocol.room_versions import get_room_version
from rooms.actions.membership import GUEST_CAN_JOIN, do_remove_guests, do_set_membership
from rooms.events import (
    Txn,
    create_and_send_event,
    current_power_levels,
    current_state_ids,
    load_pdus,
    lock_room,
    send_in_locked_room,
)
from rooms.models import Event, Room, RoomAlias
from rooms.queries.relations import THREAD, is_thread_root


def _txn(requester: Requester, endpoint: str, txn_id: str) -> Txn:
    return Txn(requester.user_id, requester.device_id or "", endpoint, txn_id)


def do_send_message(
    requester: Requester, room_id: str, event_type: str, content: JsonDict, txn_id: str
) -> Event:
    """PUT /rooms/{roomId}/send/{eventType}/{txnId}: the same txnId gives the same event.

    Raises:
        MatrixError: 400 M_DUPLICATE_ANNOTATION for a second identical reaction.
    """
    txn = _txn(requester, f"send/{room_id}/{event_type}", txn_id)
    redacts = None
    if event_type == EventTypes.REDACTION and isinstance(content.get("redacts"), str):
        # Clients may put redacts in content in every room version; the builder puts it
        # where the room version wants it (top level before v11).
        content = dict(content)
        redacts = content.pop("redacts")
    if redacts is not None:
        check_can_redact(requester.user_id, room_id, redacts)
    check_relation(room_id, content)
    check_not_duplicate_annotation(requester.user_id, room_id, event_type, content)
    return create_and_send_event(
        requester.user_id, room_id, event_type, content, txn=txn, redacts=redacts
    )


def check_relation(room_id: str, content: JsonDict) -> None:
    """A relation targets an event of the same room, and a thread does not start from an
    event that is itself the child of a relation (spec "Threading", "Validation of
    m.thread relationships"). A target we do not have cannot be judged and passes.

    Raises:
        MatrixError: 400 M_UNKNOWN (the spec has no specific code for these).
    """
    relation = content.get("m.relates_to")
    if not isinstance(relation, dict):
        return
    target, rel_type = relation.get("event_id"), relation.get("rel_type")
    if not isinstance(target, str) or not isinstance(rel_type, str):
        return
    parent = Event.objects.filter(event_id=target).select_related("room").first()
    if parent is None:
        return
    if parent.room.room_id != room_id:
        raise MatrixError(400, Codes.UNKNOWN, "Relations must be in the same room")
    if rel_type == THREAD and not is_thread_root(parent):
        raise MatrixError(400, Codes.UNKNOWN, "Cannot start threads from an event with a relation")


def check_not_duplicate_annotation(
    sender: str, room_id: str, event_type: str, content: JsonDict
) -> None:
    """Spec "Avoiding duplicate annotations": one (sender, target, key) per reaction."""
    relation = content.get("m.relates_to")
    if not isinstance(relation, dict) or relation.get("rel_type") != "m.annotation":
        return
    target, key = relation.get("event_id"), relation.get("key")
    if not isinstance(target, str) or not isinstance(key, str):
        return
    candidates = Event.objects.filter(
        room__room_id=room_id,
        sender=sender,
        type=event_type,
        relates_to=target,
        rel_type="m.annotation",
        redacted_by__isnull=True,
        rejected_reason__isnull=True,
    ).values_list("json", flat=True)
    for raw in candidates:
        if json.loads(raw).get("content", {}).get("m.relates_to", {}).get("key") == key:
            raise MatrixError(400, Codes.DUPLICATE_ANNOTATION, "You already reacted with this key")


def do_redact(
    requester: Requester, room_id: str, target_id: str, reason: Any, txn_id: str
) -> Event:
    """Raises: Forbidden: redacting someone else's event without the redact level."""
    content: JsonDict = {}
    if isinstance(reason, str):
        content["reason"] = reason
    check_can_redact(requester.user_id, room_id, target_id)
    txn = _txn(requester, f"redact/{room_id}/{target_id}", txn_id)
    return create_and_send_event(
        requester.user_id, room_id, EventTypes.REDACTION, content, txn=txn, redacts=target_id
    )


def check_can_redact(sender: str, room_id: str, target_id: str) -> None:
    """Local users redact their own events, or others' with the room's redact level.

    (The auth rules let a server vouch for redactions of its users' events; a server
    must therefore check its own clients itself, as here.)

    Raises:
        Forbidden: not allowed.
    """
    target = (
        Event.objects.filter(room__room_id=room_id, event_id=target_id)
        .select_related("room")
        .first()
    )
    if target is None or target.sender == sender:
        return
    levels = current_power_levels(target.room)
    if levels.user_level(sender) < levels.named_level("redact"):
        raise Forbidden("You may only redact your own events")


def check_canonical_alias(room_id: str, content: JsonDict) -> None:
    """Aliases in m.room.canonical_alias must point to the room (spec: 400 M_BAD_ALIAS)
    and be aliases at all (400 M_INVALID_PARAM).

    Only aliases of this server can be checked without federation; others pass.
    """
    aliases = [content.get("alias")] if content.get("alias") is not None else []
    alt = content.get("alt_aliases", [])
    if not isinstance(alt, list):
        raise InvalidParam("alt_aliases must be a list")
    for alias in [*aliases, *alt]:
        if not isinstance(alias, str):
            raise InvalidParam("Aliases must be strings")
        try:
            parse_room_alias(alias)
        except InvalidIdentifier as exc:
            raise InvalidParam(str(exc)) from None
        if server_name_of(alias) != settings.MATRIXHS_SERVER_NAME:
            continue
        if not RoomAlias.objects.filter(alias=alias, room__room_id=room_id).exists():
            raise MatrixError(400, Codes.BAD_ALIAS, f"{alias} does not point to this room")


def check_creators_not_listed(room: Room, content: JsonDict) -> None:
    """From room version 12 the creators have no power level to set: power levels that
    list one are refused as malformed, before the auth rules would (403).

    Raises:
        BadJson: a creator is in ``users``.
    """
    rv = get_room_version(room.room_version)
    users = content.get("users")
    if not rv.privileged_creators or not isinstance(users, dict):
        return
    create = current_state_ids(room, [CREATE_KEY]).get(CREATE_KEY)
    pdu = load_pdus([create]).get(create) if create else None
    listed = get_creators(pdu, rv) & users.keys()
    if listed:
        raise BadJson(f"Room creators cannot be given a power level: {', '.join(sorted(listed))}")


def do_send_state(
    requester: Requester, room_id: str, event_type: str, state_key: str, content: JsonDict
) -> Event:
    """PUT /rooms/{roomId}/state/{eventType}/{stateKey}. Setting the same content again
    returns the current event instead of sending a duplicate. Membership goes through
    the membership actions, with their checks.

    Raises:
        Forbidden: the auth rules or the membership actions refuse.
        BadJson, InvalidParam: a malformed membership or alias.
    """
    if event_type == EventTypes.CANONICAL_ALIAS:
        check_canonical_alias(room_id, content)
    if event_type == EventTypes.CREATE:
        raise BadJson("A room's create event cannot be sent again")
    with transaction.atomic():
        room = lock_room(room_id)
        if event_type == EventTypes.POWER_LEVELS and state_key == "":
            check_creators_not_listed(room, content)
        current = current_state_ids(room, [(event_type, state_key)])
        existing = Event.objects.filter(event_id__in=current.values()).first()
        if existing is not None and existing.sender == requester.user_id:
            if load_pdus([existing.event_id])[existing.event_id].get("content") == content:
                return existing  # (a redacted event has its pruned content: sent anew)
        if event_type == EventTypes.MEMBER:
            return do_set_membership(requester, room_id, state_key, content)
        event = send_in_locked_room(room, requester.user_id, event_type, content, state_key)
        if event_type == EventTypes.GUEST_ACCESS and state_key == "":
            if content.get("guest_access") != GUEST_CAN_JOIN:
                do_remove_guests(room)
        return event
