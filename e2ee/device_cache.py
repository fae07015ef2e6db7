"""Device lists of users on other servers, kept while they share a room with ours.

The first /keys/query about a remote user who shares a room with one of our users fetches
their list from their server (``GET /_matrix/federation/v1/user/devices/{userId}``, which
also gives the list's ``stream_id``) and keeps it. Their server then sends us every change
(``m.device_list_update`` with ``prev_id``, ``m.signing_key_update``) while a room is
shared, and each is applied to the kept list. The list answers later queries while it is
known to be current: the user has been in a room with one of ours, without a break, since
it was fetched, and every update since then followed on from the last (its ``prev_id``
were all seen). A gap makes it stale, and the next query fetches it again. Users who share
no room with ours are asked about each time (nothing would keep their list current).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Min

from e2ee.models import RemoteDeviceList
from e2ee.remote import RemoteKeys, ask_all, device_keys_of, query_remote_keys
from matrixhs.errors import JsonDict
from matrixhs.streams import Stream, current_position
from rooms.models import RoomMembership

#: How many applied ``stream_id``s a list remembers for the ``prev_id`` check.
SEEN_STREAM_IDS = 16


def remote_keys(by_server: dict[str, dict[str, list[str]]], timeout_ms: int) -> RemoteKeys:
    """The /keys/query answer for remote users: from the kept lists where they are
    current, fetched (and kept) for other users who share a room with ours, and asked of
    their servers for the rest.

    Args:
        by_server: {server_name: {user_id: [device_id, ...] (empty: all devices)}}
    """
    wanted = {user: devices for users in by_server.values() for user, devices in users.items()}
    server_of = {user: server for server, users in by_server.items() for user in users}
    sharing = sharing_since(list(wanted))
    kept = {row.user_id: row for row in RemoteDeviceList.objects.filter(user_id__in=wanted)}
    result = RemoteKeys()
    to_fetch: dict[str, str] = {}
    to_ask: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for user_id, devices in wanted.items():
        since, row = sharing.get(user_id), kept.get(user_id)
        if since is None:
            to_ask[server_of[user_id]][user_id] = devices
        elif row is not None and not row.stale and since <= row.fetched_position:
            _answer(result, row, devices)
        else:
            to_fetch[user_id] = server_of[user_id]
    for row in _fetch(to_fetch, timeout_ms, result.failures):
        _answer(result, row, wanted[row.user_id])
    asked = query_remote_keys(dict(to_ask), timeout_ms)
    result.device_keys.update(asked.device_keys)
    result.master_keys.update(asked.master_keys)
    result.self_signing_keys.update(asked.self_signing_keys)
    result.failures.update(asked.failures)
    return result


def sharing_since(user_ids: list[str]) -> dict[str, int]:
    """For each of these users who shares a room with one of ours: the events stream
    position since which they have shared one without a break (two queries)."""
    joined = list(
        RoomMembership.objects.filter(
            user_id__in=user_ids, membership="join", stream_ordering__isnull=False
        ).values_list("user_id", "room_id", "stream_ordering")
    )
    if not joined:
        return {}
    ours_since = dict(
        RoomMembership.objects.filter(
            room_id__in={room for _, room, _ in joined},
            membership="join",
            user_id__endswith=f":{settings.MATRIXHS_SERVER_NAME}",
            stream_ordering__isnull=False,
        )
        .values("room_id")
        .annotate(first=Min("stream_ordering"))
        .values_list("room_id", "first")
    )
    since: dict[str, int] = {}
    for user_id, room_id, position in joined:
        if room_id in ours_since:
            shared = max(position, ours_since[room_id])
            since[user_id] = min(shared, since.get(user_id, shared))
    return since


def _answer(result: RemoteKeys, row: RemoteDeviceList, devices: list[str]) -> None:
    result.device_keys[row.user_id] = {
        device_id: keys
        for device_id, keys in row.device_keys.items()
        if not devices or device_id in devices
    }
    if row.master_key:
        result.master_keys[row.user_id] = row.master_key
    if row.self_signing_key:
        result.self_signing_keys[row.user_id] = row.self_signing_key


def _fetch(
    server_of: dict[str, str], timeout_ms: int, failures: dict[str, JsonDict]
) -> list[RemoteDeviceList]:
    """Fetch and keep these users' lists (GET /user/devices, in parallel); a server that
    fails any of them goes into ``failures``."""
    if not server_of:
        return []
    position = current_position(Stream.EVENTS)
    requests = {
        user_id: (lambda c, s=server, u=user_id: c.user_devices(s, u))
        for user_id, server in server_of.items()
    }
    answers, failed = ask_all(requests, timeout_ms)
    for user_id, failure in failed.items():
        failures[server_of[user_id]] = failure
    rows = []
    for user_id, answer in answers.items():
        row = _keep(user_id, answer, position)
        if row is not None:
            rows.append(row)
    return rows


def _keep(user_id: str, answer: Any, position: int) -> RemoteDeviceList | None:
    if not isinstance(answer, dict) or answer.get("user_id") != user_id:
        return None
    stream_id = answer.get("stream_id")
    devices = answer.get("devices")
    if not isinstance(stream_id, int) or not isinstance(devices, list):
        return None
    device_keys: JsonDict = {}
    for device in devices:
        if not isinstance(device, dict) or not isinstance(device.get("device_id"), str):
            continue
        keys = _with_name(device.get("keys"), device.get("device_display_name"))
        device_keys.update(device_keys_of(user_id, {device["device_id"]: keys}, []))
    row, _ = RemoteDeviceList.objects.update_or_create(
        user_id=user_id,
        defaults={
            "stream_id": stream_id,
            "seen_stream_ids": [stream_id],
            "device_keys": device_keys,
            "master_key": _key_of(user_id, answer.get("master_key")),
            "self_signing_key": _key_of(user_id, answer.get("self_signing_key")),
            "fetched_position": position,
            "stale": False,
        },
    )
    return row


def _with_name(keys: Any, name: Any) -> Any:
    if not isinstance(keys, dict):
        return None
    keys = dict(keys)
    unsigned = dict(keys.get("unsigned") or {})
    if isinstance(name, str):
        unsigned["device_display_name"] = name
    if unsigned:
        keys["unsigned"] = unsigned
    return keys


def _key_of(user_id: str, key: Any) -> JsonDict | None:
    return key if isinstance(key, dict) and key.get("user_id") == user_id else None


def apply_device_list_update(user_id: str, content: JsonDict) -> None:
    """An ``m.device_list_update`` from the user's server: applied to the kept list when
    it follows on from what was applied (every ``prev_id`` seen), else the list is stale."""
    stream_id, prev_ids = content.get("stream_id"), content.get("prev_id") or []
    device_id = content.get("device_id")
    with transaction.atomic():
        row = RemoteDeviceList.objects.select_for_update().filter(user_id=user_id).first()
        if row is None or row.stale:
            return
        if not isinstance(stream_id, int) or not isinstance(device_id, str):
            row.stale = True
        elif stream_id in row.seen_stream_ids or stream_id <= row.stream_id:
            return  # already applied (a resent transaction or a fetch that included it)
        elif not isinstance(prev_ids, list) or not set(prev_ids) <= set(row.seen_stream_ids):
            row.stale = True
        else:
            _apply(row, device_id, content)
            row.stream_id = stream_id
            row.seen_stream_ids = [*row.seen_stream_ids, stream_id][-SEEN_STREAM_IDS:]
        row.save()


def _apply(row: RemoteDeviceList, device_id: str, content: JsonDict) -> None:
    if content.get("deleted") is True:
        row.device_keys.pop(device_id, None)
        return
    name = content.get("device_display_name")
    keys = _with_name(content.get("keys"), name)
    if keys is not None:
        row.device_keys.update(device_keys_of(row.user_id, {device_id: keys}, []))
    elif device_id in row.device_keys and isinstance(name, str):
        row.device_keys[device_id] = _with_name(row.device_keys[device_id], name)


def apply_signing_key_update(user_id: str, content: JsonDict) -> None:
    """An ``m.signing_key_update``: the user's new master and self-signing keys."""
    updates = {
        field: key
        for field, part in (("master_key", "master_key"), ("self_signing_key", "self_signing_key"))
        if (key := _key_of(user_id, content.get(part))) is not None
    }
    if updates:
        RemoteDeviceList.objects.filter(user_id=user_id).update(**updates)


def forget(user_id: str) -> None:
    """The user shares no room with ours anymore: nothing keeps the list current."""
    RemoteDeviceList.objects.filter(user_id=user_id).delete()
