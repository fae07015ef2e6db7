"""Reads of room deletions (GET /_synapse/admin/v2/rooms/.../delete_status)."""

from __future__ import annotations

from matrixhs.errors import JsonDict
from serveradmin.models import RoomDeletion


def format_deletion(job: RoomDeletion, with_id: bool = True) -> JsonDict:
    result = job.result or {}
    body: JsonDict = {
        "status": job.status,
        "shutdown_room": {
            "kicked_users": result.get("kicked_users", []),
            "failed_to_kick_users": result.get("failed_to_kick_users", []),
            "local_aliases": result.get("local_aliases", []),
            "new_room_id": result.get("new_room_id"),
        },
    }
    if with_id:
        body["delete_id"] = job.delete_id
    if job.status == RoomDeletion.FAILED:
        body["error"] = job.error
    return body
