"""Account data, global and per room; each write takes a position in its stream."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from accounts.models import AccountData, User
from matrixhs.errors import InvalidParam, JsonDict
from matrixhs.notifier import notify_users_on_commit
from matrixhs.streams import Stream, next_position


def do_set_account_data(user: User, data_type: str, content: JsonDict, room_id: str = "") -> int:
    """Store ``content`` under ``data_type``; returns its account-data stream position."""
    with transaction.atomic():
        row, _ = AccountData.objects.select_for_update().get_or_create(
            user=user,
            room_id=room_id,
            type=data_type,
            defaults={"content": content, "stream_id": 0},
        )
        row.content = content
        row.stream_id = next_position(Stream.ACCOUNT_DATA)
        row.save(update_fields=["content", "stream_id"])
        notify_users_on_commit([user.user_id])
    return row.stream_id


#: The room account data type holding a room's tags (spec "Room Tagging").
TAGS = "m.tag"
MAX_TAG_LENGTH = 255


def _change_tags(user: User, room_id: str, change: Callable[[JsonDict], None]) -> None:
    with transaction.atomic():
        row = (
            AccountData.objects.select_for_update()
            .filter(user=user, room_id=room_id, type=TAGS)
            .first()
        )
        content = dict(row.content) if row is not None else {}
        tags = content.get("tags")
        tags = dict(tags) if isinstance(tags, dict) else {}
        change(tags)
        do_set_account_data(user, TAGS, {**content, "tags": tags}, room_id)


def do_set_room_tag(user: User, room_id: str, tag: str, content: JsonDict) -> None:
    """PUT /tags/{tag}: add or replace a tag (``order`` between 0 and 1, optional).

    Raises:
        InvalidParam: a tag name over MAX_TAG_LENGTH, or an order that is not a number.
    """
    if not tag or len(tag) > MAX_TAG_LENGTH:
        raise InvalidParam(f"A tag is 1 to {MAX_TAG_LENGTH} characters")
    order = content.get("order")
    if order is not None and (isinstance(order, bool) or not isinstance(order, int | float)):
        raise InvalidParam("order must be a number")
    _change_tags(user, room_id, lambda tags: tags.__setitem__(tag, content))


def do_delete_room_tag(user: User, room_id: str, tag: str) -> None:
    """DELETE /tags/{tag}: remove a tag (an unknown tag is no error)."""
    _change_tags(user, room_id, lambda tags: tags.pop(tag, None))
