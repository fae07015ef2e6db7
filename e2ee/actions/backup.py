"""Server-side key backups (spec "Server-side key backups"): versions and the keys in them.

Every write locks the user's row first, so a user's backup changes one at a time (the
etag and count a write answers with are those of its own change).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Max

from accounts.models import User
from e2ee.errors import WrongRoomKeysVersion
from e2ee.models import RoomKey, RoomKeysVersion
from e2ee.queries import access_backup_version, parse_version
from matrixhs.errors import BadJson, InvalidParam, JsonDict, MissingParam, NotFound
from matrixhs.protocol.canonical_json import MAX_SAFE_INTEGER


@dataclass(frozen=True)
class KeyBackupData:
    first_message_index: int
    forwarded_count: int
    is_verified: bool
    session_data: JsonDict

    def is_better_than(self, stored: RoomKey) -> bool:
        """The spec's rule: a verified key wins, then the lower first message index, then
        the lower forwarded count; on a tie the stored key stays."""
        if self.is_verified != stored.is_verified:
            return self.is_verified
        if self.first_message_index != stored.first_message_index:
            return self.first_message_index < stored.first_message_index
        return self.forwarded_count < stored.forwarded_count


#: {room_id: {session_id: key}}
RoomKeys = dict[str, dict[str, KeyBackupData]]


def check_key_backup_data(data: Any, where: str) -> KeyBackupData:
    """Raises: MissingParam, BadJson: not a ``KeyBackupData`` object."""
    if not isinstance(data, dict):
        raise BadJson(f"{where} must be an object")
    for name in ("first_message_index", "forwarded_count", "is_verified", "session_data"):
        if name not in data:
            raise MissingParam(f"Missing parameter: {where}.{name}")
    for name in ("first_message_index", "forwarded_count"):
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_SAFE_INTEGER:
            raise BadJson(f"{where}.{name} must be an integer")
    if not isinstance(data["is_verified"], bool):
        raise BadJson(f"{where}.is_verified must be a boolean")
    if not isinstance(data["session_data"], dict):
        raise BadJson(f"{where}.session_data must be an object")
    return KeyBackupData(
        data["first_message_index"],
        data["forwarded_count"],
        data["is_verified"],
        data["session_data"],
    )


def check_room_key_backup(data: Any, room_id: str) -> dict[str, KeyBackupData]:
    """A ``RoomKeyBackup``: ``{"sessions": {session_id: KeyBackupData}}``."""
    if not isinstance(data, dict):
        raise BadJson(f"{room_id} must be an object")
    if "sessions" not in data:
        raise MissingParam("Missing parameter: sessions")
    sessions = data["sessions"]
    if not isinstance(sessions, dict):
        raise BadJson("sessions must be an object")
    return {
        session_id: check_key_backup_data(key, f"sessions.{session_id}")
        for session_id, key in sessions.items()
    }


def check_room_keys_body(body: JsonDict) -> RoomKeys:
    """The body of ``PUT /room_keys/keys``: ``{"rooms": {room_id: RoomKeyBackup}}``."""
    if "rooms" not in body:
        raise MissingParam("Missing parameter: rooms")
    rooms = body["rooms"]
    if not isinstance(rooms, dict):
        raise BadJson("rooms must be an object")
    return {room_id: check_room_key_backup(data, room_id) for room_id, data in rooms.items()}


def _lock_user(user: User) -> None:
    User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()


def do_create_backup_version(user: User, algorithm: str, auth_data: JsonDict) -> str:
    """Create the user's new current backup version; returns its version string."""
    with transaction.atomic():
        _lock_user(user)
        last = RoomKeysVersion.objects.filter(user=user).aggregate(last=Max("version"))["last"]
        row = RoomKeysVersion.objects.create(
            user=user, version=(last or 0) + 1, algorithm=algorithm, auth_data=auth_data
        )
    return str(row.version)


def do_update_backup_version(user: User, version: str, body: JsonDict) -> None:
    """Replace ``auth_data`` of a backup version.

    Raises:
        InvalidParam: the body names another version, or another algorithm.
        NotFound: no such backup version.
    """
    if body.get("version", version) != version:
        raise InvalidParam("The version in the body does not match the one in the path")
    with transaction.atomic():
        _lock_user(user)
        row = access_backup_version(user, version)
        if body["algorithm"] != row.algorithm:
            raise InvalidParam("The algorithm of a backup cannot change")
        row.auth_data = body["auth_data"]
        row.save(update_fields=["auth_data"])


def do_delete_backup_version(user: User, version: str) -> None:
    """Delete a backup version and its keys; deleting it again succeeds.

    Raises:
        NotFound: the version never existed.
    """
    number = parse_version(version)
    with transaction.atomic():
        _lock_user(user)
        row = None
        if number is not None:
            row = RoomKeysVersion.objects.filter(user=user, version=number).first()
        if row is None:
            raise NotFound("Unknown backup version")
        row.keys.all().delete()
        if not row.deleted:
            row.deleted = True
            row.save(update_fields=["deleted"])


def do_put_room_keys(user: User, version: str, room_keys: RoomKeys) -> JsonDict:
    """Merge keys into the current backup, keeping the better of two keys of a session.

    Returns:
        The backup's ``etag`` (new if anything changed) and ``count``.

    Raises:
        NotFound: the user has no backup.
        WrongRoomKeysVersion: ``version`` is not the current backup.
    """
    with transaction.atomic():
        _lock_user(user)
        current = access_backup_version(user)
        if parse_version(version) != current.version:
            raise WrongRoomKeysVersion(str(current.version))
        if _merge_room_keys(current, room_keys):
            current.etag += 1
            current.save(update_fields=["etag"])
        return {"etag": str(current.etag), "count": current.keys.count()}


def _merge_room_keys(backup: RoomKeysVersion, room_keys: RoomKeys) -> bool:
    """Insert new sessions and replace worse stored ones; returns whether anything changed."""
    sessions = {session_id for by_session in room_keys.values() for session_id in by_session}
    stored = {
        (row.room_id, row.session_id): row
        for row in backup.keys.filter(room_id__in=list(room_keys), session_id__in=sessions)
    }
    new, replaced = [], []
    fields = ["first_message_index", "forwarded_count", "is_verified", "session_data"]
    for room_id, by_session in room_keys.items():
        for session_id, key in by_session.items():
            row = stored.get((room_id, session_id))
            if row is None:
                new.append(
                    RoomKey(
                        backup=backup,
                        room_id=room_id,
                        session_id=session_id,
                        **{name: getattr(key, name) for name in fields},
                    )
                )
            elif key.is_better_than(row):
                for name in fields:
                    setattr(row, name, getattr(key, name))
                replaced.append(row)
    RoomKey.objects.bulk_create(new, batch_size=500)
    RoomKey.objects.bulk_update(replaced, fields, batch_size=500)
    return bool(new or replaced)


def do_delete_room_keys(
    user: User, version: str, room_id: str | None = None, session_id: str | None = None
) -> JsonDict:
    """Delete the keys of a backup version (all, a room's, or one session's).

    Raises:
        NotFound: no such backup version.
    """
    with transaction.atomic():
        _lock_user(user)
        backup = access_backup_version(user, version)
        keys = backup.keys.all()
        if room_id is not None:
            keys = keys.filter(room_id=room_id)
            if session_id is not None:
                keys = keys.filter(session_id=session_id)
        keys.delete()
        backup.etag += 1
        backup.save(update_fields=["etag"])
        return {"etag": str(backup.etag), "count": backup.keys.count()}
