"""Reads of end-to-end encryption state: key queries, device-list changes, to-device
inboxes, dehydrated devices and key backups, including what /sync needs.

/sync calls: :func:`one_time_key_counts`, :func:`unused_fallback_key_types`,
:func:`device_list_changes`, :func:`signature_changes`, :func:`to_device_messages` (and
``e2ee.actions.to_device.delete_to_device_up_to`` for acknowledged messages).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Q

from accounts.models import Device, User
from e2ee.device_cache import remote_keys
from e2ee.models import (
    CrossSigningKey,
    CrossSigningSignature,
    DehydratedDevice,
    DeviceKeys,
    DeviceListChange,
    FallbackKey,
    OneTimeKey,
    RoomKey,
    RoomKeysVersion,
    ToDeviceMessage,
)
from matrixhs.errors import BadJson, Forbidden, InvalidParam, JsonDict, NotFound
from matrixhs.protocol.ids import InvalidIdentifier, parse_user_id, server_name_of
from matrixhs.streams import Stream, current_position

#: Clients count on an answer for the one algorithm in use, even when it is zero.
SIGNED_CURVE25519 = "signed_curve25519"


def is_local(user_id: str) -> bool:
    return server_name_of(user_id) == settings.MATRIXHS_SERVER_NAME


def split_by_server(user_ids: Any) -> tuple[list[str], dict[str, list[str]]]:
    """Valid user IDs, split into local ones and remote ones by server name (invalid
    ones are dropped, as if the user had no keys)."""
    local: list[str] = []
    remote: dict[str, list[str]] = defaultdict(list)
    for user_id in user_ids:
        try:
            parse_user_id(user_id)
        except InvalidIdentifier:
            continue
        if is_local(user_id):
            local.append(user_id)
        else:
            remote[server_name_of(user_id)].append(user_id)
    return local, dict(remote)


# --- One-time and fallback keys of a device (/keys/upload, /sync) ------------------------------


def one_time_key_counts(user: User, device_id: str) -> dict[str, int]:
    """{algorithm: unclaimed one-time keys} of a device; ``signed_curve25519`` always."""
    counts = {SIGNED_CURVE25519: 0}
    rows = (
        OneTimeKey.objects.filter(device__user=user, device__device_id=device_id)
        .values("algorithm")
        .annotate(count=Count("id"))
        .values_list("algorithm", "count")
    )
    counts.update(dict(rows))
    return counts


def unused_fallback_key_types(user: User, device_id: str) -> list[str]:
    """The algorithms for which the device has a fallback key no claim has used yet."""
    return sorted(
        FallbackKey.objects.filter(
            device__user=user, device__device_id=device_id, used=False
        ).values_list("algorithm", flat=True)
    )


def key_counts(user: User, device_id: str) -> tuple[dict[str, int], list[str]]:
    """Both of /sync's key fields (one query): :func:`one_time_key_counts` and
    :func:`unused_fallback_key_types`."""
    otk, fallback, device = (
        OneTimeKey._meta.db_table,
        FallbackKey._meta.db_table,
        Device._meta.db_table,
    )
    sql = f"""
        SELECT 'o', k.algorithm, COUNT(*) FROM {otk} k JOIN {device} d ON k.device_id = d.id
        WHERE d.user_id = %s AND d.device_id = %s GROUP BY k.algorithm
        UNION ALL
        SELECT 'f', k.algorithm, 0 FROM {fallback} k JOIN {device} d ON k.device_id = d.id
        WHERE d.user_id = %s AND d.device_id = %s AND NOT k.used
    """
    counts = {SIGNED_CURVE25519: 0}
    unused = []
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, device_id, user.pk, device_id])
        for kind, algorithm, count in cursor.fetchall():
            if kind == "o":
                counts[algorithm] = int(count)
            else:
                unused.append(algorithm)
    return counts, sorted(unused)


# --- /keys/query -------------------------------------------------------------------------------


def check_keys_query(device_keys: Any) -> dict[str, list[str]]:
    """Raises: BadJson: not a map of user ID to a list of device IDs."""
    if not isinstance(device_keys, dict) or not all(
        isinstance(ids, list) and all(isinstance(i, str) for i in ids)
        for ids in device_keys.values()
    ):
        raise BadJson("device_keys must map user IDs to lists of device IDs")
    return device_keys


def query_keys(requester_id: str, query: dict[str, list[str]], timeout_ms: int) -> JsonDict:
    """The /keys/query answer: devices and cross-signing keys, with the signatures
    ``requester_id`` may see. A fixed number of queries for the local users."""
    local, remote = split_by_server(query)
    signatures = _visible_signatures(requester_id, local)
    body: JsonDict = {
        "device_keys": _local_device_keys({u: query[u] for u in local}, signatures),
        **_local_cross_signing_keys(requester_id, local, signatures),
    }
    answer = remote_keys(
        {server: {u: query[u] for u in users} for server, users in remote.items()}, timeout_ms
    )
    body["device_keys"].update(answer.device_keys)
    body["master_keys"].update(answer.master_keys)
    body["self_signing_keys"].update(answer.self_signing_keys)
    body["failures"] = answer.failures
    return body


def local_keys_for_server(query: dict[str, list[str]]) -> JsonDict:
    """The answer to another server's /user/keys/query: our users' devices and master
    and self-signing keys, with the signatures the users made themselves (what anyone
    may see); users of other servers are left out."""
    local, _ = split_by_server(query)
    signatures = _visible_signatures("", local)
    body: JsonDict = {
        "device_keys": _local_device_keys({u: query[u] for u in local}, signatures),
        **_local_cross_signing_keys("", local, signatures),
    }
    del body["user_signing_keys"]
    return body


def device_list_for_server(user_id: str) -> JsonDict:
    """The answer to another server's GET /user/devices/{userId}: the devices with keys,
    their names, the cross-signing keys, and the position of the list's last change.

    Raises:
        NotFound: no such user here.
    """
    if not is_local(user_id) or not User.objects.filter(user_id=user_id).exists():
        raise NotFound("No such user here")
    keys = local_keys_for_server({user_id: []})
    devices = []
    for device_id, device_keys in sorted(keys["device_keys"][user_id].items()):
        entry: JsonDict = {"device_id": device_id, "keys": device_keys}
        name = device_keys.pop("unsigned", {}).get("device_display_name")
        if name:
            entry["device_display_name"] = name
        devices.append(entry)
    body: JsonDict = {
        "user_id": user_id,
        "stream_id": device_list_position(user_id),
        "devices": devices,
    }
    return {**body, **local_signing_keys(user_id)}


def local_signing_keys(user_id: str) -> JsonDict:
    """``master_key`` and ``self_signing_key`` of one of our users (those they have)."""
    keys = _local_cross_signing_keys("", [user_id], _visible_signatures("", [user_id]))
    body: JsonDict = {}
    if user_id in keys["master_keys"]:
        body["master_key"] = keys["master_keys"][user_id]
    if user_id in keys["self_signing_keys"]:
        body["self_signing_key"] = keys["self_signing_keys"][user_id]
    return body


def device_list_position(user_id: str) -> int:
    """The position of the last change of the user's device list seen by everyone
    (0: never changed)."""
    last = (
        DeviceListChange.objects.filter(user_id=user_id, observer_user_id__isnull=True)
        .order_by("-stream_id")
        .values_list("stream_id", flat=True)
        .first()
    )
    return last or 0


#: {(target user ID, target key ID): [(signer, signing key ID, signature)]}
Signatures = dict[tuple[str, str], list[tuple[str, str, str]]]


def _visible_signatures(requester_id: str, user_ids: list[str]) -> Signatures:
    """Signatures of the users' keys by the users themselves, or by the requester (so
    nobody sees what someone else's user-signing key signed)."""
    rows = (
        CrossSigningSignature.objects.filter(target_user_id__in=user_ids)
        .filter(Q(signer_user_id=F("target_user_id")) | Q(signer_user_id=requester_id))
        .values_list(
            "target_user_id", "target_key_id", "signer_user_id", "signing_key_id", "signature"
        )
    )
    signatures: Signatures = defaultdict(list)
    for target_user_id, target_key_id, signer, signing_key_id, signature in rows:
        signatures[(target_user_id, target_key_id)].append((signer, signing_key_id, signature))
    return signatures


def _with_signatures(key: JsonDict, extra: list[tuple[str, str, str]]) -> JsonDict:
    for signer, signing_key_id, signature in extra:
        key.setdefault("signatures", {}).setdefault(signer, {})[signing_key_id] = signature
    return key


def _local_device_keys(query: dict[str, list[str]], signatures: Signatures) -> JsonDict:
    """{user_id: {device_id: keys}}; every queried user is there, if only as ``{}``.
    One query: every device of the users asked about without a list, and the listed
    devices of the others."""
    result: JsonDict = {user_id: {} for user_id in query}
    wanted = Q(device__user__user_id__in=[u for u, devices in query.items() if not devices])
    for user_id, device_ids in query.items():
        if device_ids:
            wanted |= Q(device__user__user_id=user_id, device__device_id__in=device_ids)
    rows = DeviceKeys.objects.filter(wanted).values_list(
        "device__user__user_id", "device__device_id", "device__display_name", "key_json"
    )
    for user_id, device_id, display_name, key_json in rows:
        keys = _with_signatures(json.loads(key_json), signatures.get((user_id, device_id), []))
        if display_name:
            keys["unsigned"] = {"device_display_name": display_name}
        result[user_id][device_id] = keys
    return result


def _local_cross_signing_keys(
    requester_id: str, user_ids: list[str], signatures: Signatures
) -> JsonDict:
    """Master and self-signing keys of the users, and the requester's own user-signing
    key (nobody else's)."""
    body: JsonDict = {"master_keys": {}, "self_signing_keys": {}, "user_signing_keys": {}}
    rows = CrossSigningKey.objects.filter(user__user_id__in=user_ids).values_list(
        "user__user_id", "key_type", "public_key", "key_json"
    )
    for user_id, key_type, public_key, key_json in rows:
        if key_type == CrossSigningKey.KeyType.USER_SIGNING and user_id != requester_id:
            continue
        key = _with_signatures(json.loads(key_json), signatures.get((user_id, public_key), []))
        body[f"{key_type}_keys"][user_id] = key
    return body


# --- Device-list changes (/keys/changes, /sync) --------------------------------------------


def device_list_changes(since: int, until: int) -> set[str]:
    """Users whose devices or master/self-signing keys changed in ``(since, until]``.

    Everyone who shares a room with such a user is to be told; picking those needs the
    rooms, so it is the caller's job.
    """
    return set(
        DeviceListChange.objects.filter(
            stream_id__gt=since, stream_id__lte=until, observer_user_id__isnull=True
        ).values_list("user_id", flat=True)
    )


def signature_changes(observer_id: str, since: int, until: int) -> set[str]:
    """Users only ``observer_id`` is to be told about in ``(since, until]``: they got a
    signature from the observer's user-signing key (or it is the observer, whose
    user-signing key changed)."""
    return set(
        DeviceListChange.objects.filter(
            stream_id__gt=since, stream_id__lte=until, observer_user_id=observer_id
        ).values_list("user_id", flat=True)
    )


# --- To-device inbox (/sync) -----------------------------------------------------------------


def to_device_messages(
    user: User, device_id: str, since: int, limit: int = 100, until: int | None = None
) -> tuple[list[JsonDict], int]:
    """The device's messages in ``(since, until]``, oldest first, at most ``limit``.

    Read ``until`` (the to-device position of the next token) before calling, or leave it
    out to use the current position.

    Returns:
        ``(events, position)``: the ``to_device.events`` of /sync, and the to-device
        position its next token should carry (the last event's when ``limit`` cut the
        list short, else ``until``).
    """
    if until is None:
        until = current_position(Stream.TO_DEVICE)
    rows = list(
        ToDeviceMessage.objects.filter(
            device__user=user,
            device__device_id=device_id,
            stream_id__gt=since,
            stream_id__lte=until,
        )
        .order_by("stream_id")
        .values_list("stream_id", "sender", "type", "content")[:limit]
    )
    events = [{"sender": s, "type": t, "content": c} for _, s, t, c in rows]
    position = rows[-1][0] if rows and len(rows) >= limit else until
    return events, position


# --- Dehydrated devices (MSC3814) -------------------------------------------------------------


def get_dehydrated_device(user: User) -> JsonDict:
    """The ``GET /dehydrated_device`` answer.

    Raises:
        NotFound: the user has no dehydrated device.
    """
    row = DehydratedDevice.objects.filter(user=user).select_related("device").first()
    if row is None:
        raise NotFound("No dehydrated device available")
    return {"device_id": row.device.device_id, "device_data": row.device_data}


def dehydrated_device_events(
    user: User, device_id: str, next_batch: str | None, limit: int
) -> JsonDict:
    """A batch of the to-device messages of the user's dehydrated device, oldest first.

    ``next_batch`` is the to-device position of the previous batch (none: from the
    start). Unlike /sync, a batch acknowledges nothing: the messages stay until the
    device goes, so a rehydration cut short can be started again (MSC3814). A batch
    that reaches the end still has a ``next_batch``, whose batch is empty.

    Raises:
        Forbidden: ``device_id`` is not the user's dehydrated device.
        InvalidParam: ``next_batch`` is not a token of ours.
    """
    if not DehydratedDevice.objects.filter(user=user, device__device_id=device_id).exists():
        raise Forbidden("You may only fetch messages for your dehydrated device")
    since = 0
    if next_batch is not None:
        if not (next_batch.isascii() and next_batch.isdigit() and len(next_batch) < 19):
            raise InvalidParam("Invalid next_batch token")
        since = int(next_batch)
    events, position = to_device_messages(user, device_id, since, limit)
    return {"events": events, "next_batch": str(position)}


# --- Key backups -------------------------------------------------------------------------------


def parse_version(version: str) -> int | None:
    """Versions are the decimal numbers we hand out; anything else names no backup."""
    if version.isascii() and version.isdigit() and len(version) < 19:
        return int(version)
    return None


def access_backup_version(user: User, version: str | None = None) -> RoomKeysVersion:
    """The user's backup version ``version``, or the current one.

    Raises:
        NotFound: no such (undeleted) version, or no backup at all.
    """
    rows = RoomKeysVersion.objects.filter(user=user, deleted=False)
    if version is None:
        row = rows.order_by("-version").first()
    else:
        number = parse_version(version)
        row = rows.filter(version=number).first() if number is not None else None
    if row is None:
        raise NotFound("No backup found" if version is None else "Unknown backup version")
    return row


def format_backup_version(row: RoomKeysVersion) -> JsonDict:
    return {
        "algorithm": row.algorithm,
        "auth_data": row.auth_data,
        "count": row.keys.count(),
        "etag": str(row.etag),
        "version": str(row.version),
    }


def format_room_key(row: RoomKey) -> JsonDict:
    return {
        "first_message_index": row.first_message_index,
        "forwarded_count": row.forwarded_count,
        "is_verified": row.is_verified,
        "session_data": row.session_data,
    }


def get_room_keys(
    user: User, version: str, room_id: str | None = None, session_id: str | None = None
) -> JsonDict:
    """Keys of a backup version, shaped by how much was asked: all rooms, one room, or
    one session.

    Raises:
        NotFound: no such backup version, or (for one session) no such key.
    """
    backup = access_backup_version(user, version)
    keys = backup.keys.all()
    if room_id is not None:
        keys = keys.filter(room_id=room_id)
    if session_id is not None:
        row = keys.filter(session_id=session_id).first()
        if row is None:
            raise NotFound("No room_keys found")
        return format_room_key(row)
    rooms: JsonDict = {}
    for row in keys.order_by("room_id", "session_id"):
        rooms.setdefault(row.room_id, {"sessions": {}})["sessions"][row.session_id] = (
            format_room_key(row)
        )
    if room_id is not None:
        return rooms.get(room_id, {"sessions": {}})
    return {"rooms": rooms}
