"""Room shutdown and deletion (DELETE /_synapse/admin/v2/rooms/{roomId}) as a durable
job: the request writes a RoomDeletion row, the periodic job (matrixhs.background, or
Celery beat in the scaled mode) runs it. Each step can run again, so a crash resumes."""

from __future__ import annotations

import logging
import secrets

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from accounts.actions.users import do_register_user
from accounts.models import User
from matrixhs.errors import InvalidParam, JsonDict, MatrixError
from matrixhs.protocol.events import Membership
from matrixhs.protocol.ids import InvalidIdentifier, split_id
from matrixhs.time import now_ms
from rooms.actions.aliases import do_create_alias, do_delete_alias
from rooms.actions.blocking import do_block_room
from rooms.actions.create import do_create_room
from rooms.actions.directory import do_set_room_visibility
from rooms.actions.membership import do_join, do_leave
from rooms.events import create_and_send_event, purge_room
from rooms.models import Room, RoomAlias, RoomMembership
from serveradmin.models import RoomDeletion

logger = logging.getLogger(__name__)

DEFAULT_ROOM_NAME = "Content Violation Notification"
DEFAULT_MESSAGE = (
    "Sharing illegal content on this server is not permitted and rooms in violation "
    "will be blocked."
)
#: How long a runner holds a job before another may take it over.
LEASE_MS = 5 * 60_000


def check_new_room_user(user_id: str | None) -> None:
    """Raises: InvalidParam: the new room's creator is not of this server."""
    if user_id is None:
        return
    try:
        _, server = split_id(user_id, "@")
    except InvalidIdentifier as exc:
        raise InvalidParam("new_room_user_id is not a user ID") from exc
    if server != settings.MATRIXHS_SERVER_NAME:
        raise InvalidParam("new_room_user_id must be a local user")


def do_schedule_room_deletion(room_id: str, requester: str, params: JsonDict) -> RoomDeletion:
    """Record the deletion; the periodic job carries it out."""
    check_new_room_user(params.get("new_room_user_id"))
    now = now_ms()
    return RoomDeletion.objects.create(
        delete_id=secrets.token_urlsafe(12),
        room_id=room_id,
        requester=requester,
        params=params,
        created_ts=now,
        updated_ts=now,
    )


def run_room_deletions() -> int:
    """Run every deletion that is due (scheduled, or active with a lapsed lease)."""
    done = 0
    while (job := _claim()) is not None:
        _run(job)
        done += 1
    return done


def do_run_room_deletion_now(job: RoomDeletion) -> RoomDeletion:
    """Run one scheduled deletion in the caller's thread (Synapse's synchronous v1
    DELETE /rooms/{roomId}); the periodic job takes it over if this process dies."""
    claimed = _claim(job.pk)
    if claimed is not None:
        _run(claimed)
        return claimed
    job.refresh_from_db()
    return job


def _claim(pk: int | None = None) -> RoomDeletion | None:
    now = now_ms()
    due = Q(status=RoomDeletion.SCHEDULED) | Q(status=RoomDeletion.ACTIVE, lease_until_ts__lt=now)
    if pk is not None:
        due &= Q(pk=pk)
    candidate = RoomDeletion.objects.filter(due).order_by("pk").first()
    if candidate is None:
        return None
    claimed = RoomDeletion.objects.filter(
        due, pk=candidate.pk, lease_until_ts=candidate.lease_until_ts
    ).update(status=RoomDeletion.ACTIVE, lease_until_ts=now + LEASE_MS, updated_ts=now)
    if not claimed:
        return _claim(pk)  # another runner took it
    candidate.refresh_from_db()
    return candidate


def _run(job: RoomDeletion) -> None:
    try:
        _shut_down(job)
    except MatrixError as exc:
        job.result["error_status"], job.result["errcode"] = exc.status, exc.errcode
        _finish(job, RoomDeletion.FAILED, exc.msg)
    except Exception as exc:  # recorded for the operator; the job does not retry itself
        logger.exception("Deleting room %s failed", job.room_id)
        _finish(job, RoomDeletion.FAILED, str(exc) or type(exc).__name__)
    else:
        _finish(job, RoomDeletion.COMPLETE, "")


def _finish(job: RoomDeletion, status: str, error: str) -> None:
    job.status, job.error, job.updated_ts, job.lease_until_ts = status, error, now_ms(), 0
    job.save(update_fields=["status", "error", "updated_ts", "lease_until_ts", "result"])


def _save_result(job: RoomDeletion) -> None:
    job.updated_ts = now_ms()
    job.save(update_fields=["result", "updated_ts"])


def _shut_down(job: RoomDeletion) -> None:
    params, result = job.params, job.result
    result.setdefault("kicked_users", [])
    result.setdefault("failed_to_kick_users", [])
    result.setdefault("local_aliases", [])
    result.setdefault("new_room_id", None)
    if params.get("block"):
        do_block_room(job.room_id, job.requester)
    room = Room.objects.filter(room_id=job.room_id).first()
    if room is not None:
        if params.get("new_room_user_id") and result["new_room_id"] is None:
            result["new_room_id"] = _create_notice_room(params)
            _save_result(job)
        _move_local_members(job, room)
        _move_aliases(job, room)
        if room.is_public:
            do_set_room_visibility(room, False)
    if params.get("purge", True):
        still_joined = RoomMembership.objects.filter(
            room__room_id=job.room_id,
            membership=Membership.JOIN,
            user_id__endswith=f":{settings.MATRIXHS_SERVER_NAME}",
        ).exists()
        if still_joined and not params.get("force_purge"):
            raise InvalidParam("Local users are still in the room; it was not purged")
        purge_room(job.room_id)


def _create_notice_room(params: JsonDict) -> str:
    """The room local members are moved to, with the operator's message in it."""
    user_id = params["new_room_user_id"]
    creator = User.objects.filter(user_id=user_id).first()
    if creator is None:
        creator = do_register_user(split_id(user_id, "@")[0], None)
    room_id = do_create_room(
        creator,
        {
            "preset": "public_chat",
            "name": params.get("room_name") or DEFAULT_ROOM_NAME,
            "power_level_content_override": {"users_default": -10},
        },
    )
    content = {"msgtype": "m.text", "body": params.get("message") or DEFAULT_MESSAGE}
    create_and_send_event(user_id, room_id, "m.room.message", content)
    return room_id


def _move_local_members(job: RoomDeletion, room: Room) -> None:
    """Each local member leaves the room (and joins the new one, if any)."""
    result = job.result
    local = f":{settings.MATRIXHS_SERVER_NAME}"
    members = RoomMembership.objects.filter(
        room=room, membership=Membership.JOIN, user_id__endswith=local
    ).values_list("user_id", flat=True)
    new_room_id = result["new_room_id"]
    for user_id in list(members):
        try:
            with transaction.atomic():
                do_leave(user_id, room.room_id)
                # The new room's creator is in it already.
                if new_room_id is not None and user_id != job.params.get("new_room_user_id"):
                    user = User.objects.get(user_id=user_id)
                    if user.is_active:
                        do_join(user, new_room_id)
        except MatrixError as exc:
            logger.warning("Could not move %s out of %s: %s", user_id, room.room_id, exc.msg)
            if user_id not in result["failed_to_kick_users"]:
                result["failed_to_kick_users"].append(user_id)
        else:
            if user_id not in result["kicked_users"]:
                result["kicked_users"].append(user_id)
        _save_result(job)


def _move_aliases(job: RoomDeletion, room: Room) -> None:
    """Local aliases of the room are deleted, and point at the new room if there is one."""
    result = job.result
    new_room = (
        Room.objects.filter(room_id=result["new_room_id"]).first()
        if result["new_room_id"]
        else None
    )
    for alias in RoomAlias.objects.filter(room=room).select_related("room"):
        with transaction.atomic():
            do_delete_alias(alias, job.requester)
            if new_room is not None:
                do_create_alias(alias.alias, new_room, job.requester)
        if alias.alias not in result["local_aliases"]:
            result["local_aliases"].append(alias.alias)
        _save_result(job)
