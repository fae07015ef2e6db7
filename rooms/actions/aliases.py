"""Room aliases on this server: create and delete (the directory's side of them)."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from matrixhs.errors import Codes, Forbidden, InvalidParam, MatrixError
from matrixhs.protocol.events import EventTypes
from matrixhs.protocol.ids import InvalidIdentifier, parse_room_alias, server_name_of
from matrixhs.time import now_ms
from rooms.events import current_state_ids, load_pdus, lock_room, send_in_locked_room
from rooms.models import Room, RoomAlias


def alias_in_use(for_directory: bool) -> MatrixError:
    """createRoom answers 400 M_ROOM_IN_USE; PUT /directory/room answers 409 (spec)."""
    if for_directory:
        return MatrixError(409, Codes.UNKNOWN, "Room alias already exists")
    return MatrixError(400, Codes.ROOM_IN_USE, "Room alias already taken")


def check_new_alias(alias: str, for_directory: bool = False) -> str:
    """A valid, free alias on this server.

    Raises:
        InvalidParam: bad grammar, or an alias of another server.
        MatrixError: the alias exists (see :func:`alias_in_use`).
    """
    try:
        parse_room_alias(alias)
    except InvalidIdentifier as exc:
        raise InvalidParam(f"Invalid room alias: {exc}") from exc
    localpart = alias[1:].partition(":")[0]
    if any(c.isspace() for c in localpart) or not localpart.isprintable():
        raise InvalidParam("Room alias may not contain whitespace or control characters")
    if server_name_of(alias) != settings.MATRIXHS_SERVER_NAME:
        raise InvalidParam("Room alias must be on this server")
    if RoomAlias.objects.filter(alias=alias).exists():
        raise alias_in_use(for_directory)
    return alias


def do_create_alias(alias: str, room: Room, creator: str, for_directory: bool = False) -> RoomAlias:
    """Raises: MatrixError: the alias was taken meanwhile (see :func:`alias_in_use`)."""
    try:
        with transaction.atomic():
            return RoomAlias.objects.create(
                alias=alias, room=room, creator=creator, created_ts=now_ms()
            )
    except IntegrityError as exc:
        raise alias_in_use(for_directory) from exc


def do_delete_alias(alias: RoomAlias, deleter: str) -> None:
    """Delete an alias, and take it out of the room's m.room.canonical_alias (``alias``
    and ``alt_aliases``) with an event of ``deleter`` when they may send one (else the
    state keeps naming it, as it may name any alias)."""
    with transaction.atomic():
        alias.delete()
        room = lock_room(alias.room.room_id)
        key = (EventTypes.CANONICAL_ALIAS, "")
        event_id = current_state_ids(room, [key]).get(key)
        if event_id is None:
            return
        content = dict(load_pdus([event_id])[event_id].get("content") or {})
        alt = content.get("alt_aliases")
        named_in_alt = isinstance(alt, list) and alias.alias in alt
        if content.get("alias") != alias.alias and not named_in_alt:
            return
        if content.get("alias") == alias.alias:
            del content["alias"]
        if named_in_alt:
            content["alt_aliases"] = [a for a in alt if a != alias.alias]
        try:
            with transaction.atomic():
                send_in_locked_room(room, deleter, EventTypes.CANONICAL_ALIAS, content, "")
        except Forbidden:
            pass
