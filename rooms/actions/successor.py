"""What a local user carries into an upgraded room when they join it: their push rules
for the old room (a muted room stays muted), its tags (a favourite stays a favourite) and
its place in ``m.direct`` (a direct chat stays one), as Synapse does and as Complement's
TestPushRuleRoomUpgrade expects. This happens for every room whose create event names a
predecessor, however it was made: POST /upgrade, a client's own createRoom with a
``predecessor`` (a "manual" upgrade), or a room of another server joined over federation.

Only on a join that is new (not a profile change), so that what the user later removes
from the new room stays removed. What the user already has for the new room wins.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Collection
from typing import Any

from django.db import transaction

from accounts.actions.account_data import TAGS, do_set_account_data
from accounts.models import AccountData, User
from matrixhs.errors import JsonDict
from matrixhs.protocol.events import CREATE_KEY
from push.actions.room_rules import copy_room_rules

logger = logging.getLogger(__name__)

#: The global account data type listing direct chats (spec "Direct Messaging").
DIRECT = "m.direct"

#: Rooms whose predecessor was looked up in this process (a create event never changes).
_predecessors: OrderedDict[str, str | None] = OrderedDict()
_CACHE_SIZE = 10_000


def predecessor_of(room: Any) -> str | None:
    """The room ID the room's create event names as its predecessor, if any."""
    if room.room_id in _predecessors:
        _predecessors.move_to_end(room.room_id)
        return _predecessors[room.room_id]
    from rooms.events import current_state_ids, load_pdus

    create_id = current_state_ids(room, [CREATE_KEY]).get(CREATE_KEY)
    create = load_pdus([create_id]).get(create_id, {}) if create_id else {}
    predecessor = create.get("content", {}).get("predecessor")
    old_room_id = predecessor.get("room_id") if isinstance(predecessor, dict) else None
    found = old_room_id if isinstance(old_room_id, str) and old_room_id != room.room_id else None
    if create_id:  # a room whose state is not here yet is looked at again
        _predecessors[room.room_id] = found
        if len(_predecessors) > _CACHE_SIZE:
            _predecessors.popitem(last=False)
    return found


def carry_all(user_ids: Collection[str], old_room_id: str, new_room_id: str) -> None:
    """Carry each user's settings from the old room to the new, in the transaction of
    their joins (each in a savepoint: a join happens whatever becomes of its extras)."""
    for user in User.objects.filter(user_id__in=sorted(user_ids)):
        try:
            with transaction.atomic():
                carry_into_successor(user, old_room_id, new_room_id)
        except Exception:
            logger.exception("Carrying %s's settings into %s failed", user.user_id, new_room_id)


def carry_into_successor(user: User, old_room_id: str, new_room_id: str) -> None:
    copy_room_rules(user, old_room_id, new_room_id)
    _copy_tags(user, old_room_id, new_room_id)
    _copy_direct(user, old_room_id, new_room_id)


def _copy_tags(user: User, old_room_id: str, new_room_id: str) -> None:
    rows = dict(
        AccountData.objects.filter(
            user=user, room_id__in=[old_room_id, new_room_id], type=TAGS
        ).values_list("room_id", "content")
    )
    old = rows.get(old_room_id)
    if new_room_id in rows or not isinstance(old, dict) or not old.get("tags"):
        return
    do_set_account_data(user, TAGS, old, new_room_id)


def _copy_direct(user: User, old_room_id: str, new_room_id: str) -> None:
    with transaction.atomic():
        row = (
            AccountData.objects.select_for_update()
            .filter(user=user, room_id="", type=DIRECT)
            .first()
        )
        if row is None or not isinstance(row.content, dict):
            return
        content: JsonDict = {}
        changed = False
        for other, rooms in row.content.items():
            if isinstance(rooms, list) and old_room_id in rooms and new_room_id not in rooms:
                rooms = [*rooms, new_room_id]
                changed = True
            content[other] = rooms
        if changed:
            do_set_account_data(user, DIRECT, content)
