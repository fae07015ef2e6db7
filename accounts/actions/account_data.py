"""Account data, global and per room; each write takes a position in its stream."""

from __future__ import annotations

from django.db import transaction

from accounts.models import AccountData, User
from matrixhs.errors import JsonDict
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
