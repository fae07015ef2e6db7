"""Device keys: upload identity, one-time and fallback keys; claim one-time keys.

Each one-time key is handed out at most once, whatever the number of processes claiming
at the same time: a claim deletes the key in the statement that returns it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from accounts.models import Device, User
from e2ee.actions.devices import record_device_list_change
from e2ee.models import CrossSigningSignature, DeviceKeys, FallbackKey, OneTimeKey
from e2ee.queries import split_by_server
from e2ee.remote import claim_remote_keys
from e2ee.signed_keys import (
    ED25519,
    canonical_text,
    is_signature_map,
    signed_part,
)
from matrixhs.errors import BadJson, Codes, InvalidParam, JsonDict, MatrixError, UnknownToken
from matrixhs.time import now_ms

#: Algorithm names and key IDs are stored in 255-character columns.
MAX_KEY_PART_LENGTH = 255


@dataclass(frozen=True)
class KeyEntry:
    """One one-time or fallback key: ``<algorithm>:<key_id>`` and its canonical JSON."""

    algorithm: str
    key_id: str
    key_json: str


@dataclass
class KeyUpload:
    """A checked /keys/upload body."""

    device_keys: str | None = None
    one_time_keys: list[KeyEntry] = field(default_factory=list)
    fallback_keys: list[KeyEntry] = field(default_factory=list)


# --- checks ---------------------------------------------------------------------------------


def check_key_upload(user_id: str, device_id: str, body: JsonDict) -> KeyUpload:
    """Check a /keys/upload body for the device ``device_id`` of ``user_id``.

    Raises:
        BadJson: a key object or map has the wrong shape, or ``device_keys`` names another
            user or device.
        InvalidParam: two fallback keys for one algorithm.
    """
    upload = KeyUpload()
    if "device_keys" in body:
        upload.device_keys = check_device_keys(body["device_keys"], user_id, device_id)
    if body.get("one_time_keys") is not None:
        upload.one_time_keys = _check_key_map("one_time_keys", body["one_time_keys"])
    if body.get("fallback_keys") is not None:
        upload.fallback_keys = _check_key_map("fallback_keys", body["fallback_keys"])
        algorithms = [entry.algorithm for entry in upload.fallback_keys]
        if len(algorithms) != len(set(algorithms)):
            raise InvalidParam("At most one fallback key per algorithm can be uploaded")
    return upload


def check_device_keys(device_keys: Any, user_id: str, device_id: str) -> str:
    """Check the ``device_keys`` of an upload and return them as canonical JSON text
    (without ``unsigned``, which is ours to fill in).

    The self-signature is not verified: clients check it themselves before they trust a
    device (spec: "Downloading keys": a client must check the signature, and ignore the
    device if it fails), and other servers accept such uploads as well.

    Raises:
        BadJson: wrong shape, another user's or device's keys, or no Ed25519 key.
    """
    if not isinstance(device_keys, dict):
        raise BadJson("device_keys must be an object")
    for name, kind in (
        ("user_id", str),
        ("device_id", str),
        ("algorithms", list),
        ("keys", dict),
        ("signatures", dict),
    ):
        if not isinstance(device_keys.get(name), kind):
            raise BadJson(f"device_keys.{name} is missing or has the wrong type")
    if not all(isinstance(algorithm, str) for algorithm in device_keys["algorithms"]):
        raise BadJson("device_keys.algorithms must be a list of strings")
    if not all(isinstance(value, str) for value in device_keys["keys"].values()):
        raise BadJson("device_keys.keys must map key IDs to strings")
    if not is_signature_map(device_keys["signatures"]):
        raise BadJson("device_keys.signatures must map user IDs to key IDs to signatures")
    if device_keys["user_id"] != user_id:
        raise BadJson("device_keys.user_id does not match the authenticated user")
    if device_keys["device_id"] != device_id:
        raise BadJson("device_keys.device_id does not match the authenticated device")
    keys = {name: value for name, value in device_keys.items() if name != "unsigned"}
    text = canonical_text(keys, "device_keys")
    own_key_id = f"{ED25519}:{device_id}"
    if own_key_id not in keys["keys"]:
        raise BadJson(f"device_keys.keys has no {own_key_id} key")
    return text


def _check_key_map(name: str, keys: Any) -> list[KeyEntry]:
    """Check ``{"<algorithm>:<key_id>": key}`` where a key is a string or a key object."""
    if not isinstance(keys, dict):
        raise BadJson(f"{name} must be an object")
    entries = []
    for full_id, key in keys.items():
        algorithm, sep, key_id = full_id.partition(":")
        if not (sep and algorithm and key_id) or ":" in key_id:
            raise BadJson(f"Invalid {name} key ID {full_id!r}: expected <algorithm>:<key_id>")
        if len(algorithm) > MAX_KEY_PART_LENGTH or len(key_id) > MAX_KEY_PART_LENGTH:
            raise BadJson(f"{name} key ID {full_id!r} is too long")
        if not (isinstance(key, str) or _is_key_object(key)):
            raise BadJson(f"{name}.{full_id} must be a string or a key object")
        entries.append(KeyEntry(algorithm, key_id, canonical_text(key, f"{name}.{full_id}")))
    return entries


def _is_key_object(key: Any) -> bool:
    """A ``KeyObject``: ``key``, ``signatures`` and an optional boolean ``fallback``."""
    return (
        isinstance(key, dict)
        and isinstance(key.get("key"), str)
        and is_signature_map(key.get("signatures"))
        and isinstance(key.get("fallback", False), bool)
    )


# --- upload ----------------------------------------------------------------------------------


def do_upload_keys(user: User, device: Device, upload: KeyUpload) -> None:
    """Store the checked keys of one device, all or nothing.

    New or changed identity keys are a device-list change.

    Raises:
        MatrixError: 400 M_UNKNOWN when a one-time key ID is already stored with a
            different key (as Synapse does).
        UnknownToken: the device was deleted meanwhile (its tokens with it).
    """
    with transaction.atomic():
        # One upload at a time per device (a retried request may race with itself).
        if not Device.objects.select_for_update().filter(pk=device.pk).exists():
            raise UnknownToken("The device was deleted")
        if upload.one_time_keys:
            _store_one_time_keys(device, upload.one_time_keys)
        for entry in upload.fallback_keys:
            _store_fallback_key(device, entry)
        if upload.device_keys is not None and _store_device_keys(user, device, upload.device_keys):
            record_device_list_change([user.user_id], device_ids=[device.device_id])


def _store_device_keys(user: User, device: Device, key_json: str) -> bool:
    """Store the device's identity keys; returns whether they changed."""
    old = DeviceKeys.objects.filter(device=device).values_list("key_json", flat=True).first()
    if old == key_json:
        return False
    DeviceKeys.objects.update_or_create(
        device=device, defaults={"key_json": key_json, "updated_ts": now_ms()}
    )
    if old is not None:
        # Signatures made of the previous keys by the self-signing key no longer apply.
        CrossSigningSignature.objects.filter(
            target_user_id=user.user_id, target_key_id=device.device_id
        ).delete()
    return True


def _store_one_time_keys(device: Device, entries: list[KeyEntry]) -> None:
    """Add the one-time keys not stored yet; the first upload of a key ID is kept."""
    existing = {
        (algorithm, key_id): key_json
        for algorithm, key_id, key_json in OneTimeKey.objects.filter(
            device=device, key_id__in={entry.key_id for entry in entries}
        ).values_list("algorithm", "key_id", "key_json")
    }
    new = []
    for entry in entries:
        old = existing.get((entry.algorithm, entry.key_id))
        if old is None:
            new.append(entry)
        elif not _same_one_time_key(old, entry.key_json):
            raise MatrixError(
                400,
                Codes.UNKNOWN,
                f"One time key {entry.algorithm}:{entry.key_id} already exists with another value",
            )
    now = now_ms()
    OneTimeKey.objects.bulk_create(
        [
            OneTimeKey(
                device=device,
                algorithm=e.algorithm,
                key_id=e.key_id,
                key_json=e.key_json,
                created_ts=now,
            )
            for e in new
        ],
        ignore_conflicts=True,
    )


def _same_one_time_key(old_json: str, new_json: str) -> bool:
    """The same key, whatever its signatures (a retried upload may be signed anew)."""
    old, new = json.loads(old_json), json.loads(new_json)
    if isinstance(old, dict) and isinstance(new, dict):
        return signed_part(old) == signed_part(new)
    return bool(old == new)


def _store_fallback_key(device: Device, entry: KeyEntry) -> None:
    """Replace the fallback key of its algorithm; re-uploading the same key keeps its
    "used" mark."""
    current = FallbackKey.objects.filter(device=device, algorithm=entry.algorithm).first()
    if current is not None and (current.key_id, current.key_json) == (entry.key_id, entry.key_json):
        return
    FallbackKey.objects.update_or_create(
        device=device,
        algorithm=entry.algorithm,
        defaults={"key_id": entry.key_id, "key_json": entry.key_json, "used": False},
    )


# --- claim -----------------------------------------------------------------------------------

#: Claimed keys: {user_id: {device_id: {"<algorithm>:<key_id>": key}}}
ClaimedKeys = dict[str, dict[str, dict[str, Any]]]


def check_claim_request(one_time_keys: Any) -> dict[str, dict[str, str]]:
    """Raises: BadJson: not a map of user ID to device ID to algorithm."""
    if not isinstance(one_time_keys, dict) or not all(
        isinstance(by_device, dict) and all(isinstance(alg, str) for alg in by_device.values())
        for by_device in one_time_keys.values()
    ):
        raise BadJson("one_time_keys must map user IDs to device IDs to algorithms")
    return one_time_keys


def do_claim_keys(claims: dict[str, dict[str, str]], timeout_ms: int) -> JsonDict:
    """The /keys/claim answer: local keys claimed here, remote ones asked for (see
    e2ee.remote)."""
    local, remote = split_by_server(claims)
    one_time_keys: JsonDict = do_claim_one_time_keys({u: claims[u] for u in local})
    remote_keys, failures = claim_remote_keys(
        {server: {u: claims[u] for u in users} for server, users in remote.items()}, timeout_ms
    )
    one_time_keys.update(remote_keys)
    return {"one_time_keys": one_time_keys, "failures": failures}


def do_claim_one_time_keys(claims: dict[str, dict[str, str]]) -> ClaimedKeys:
    """Claim one key per (local user, device, algorithm): the oldest one-time key, else the
    device's fallback key for that algorithm (then marked as used).

    Unknown users and devices, and those without a key, are left out of the result.
    Runs a fixed number of queries whatever the number of devices.
    """
    devices = _devices_for_claims(claims)
    wanted = {(pk, claims[user_id][device_id]) for (user_id, device_id), pk in devices.items()}
    if not wanted:
        return {}
    names = {pk: key for key, pk in devices.items()}
    result: ClaimedKeys = {}

    def hand_out(device_pk: int, algorithm: str, key_id: str, key_json: str) -> None:
        user_id, device_id = names[device_pk]
        by_key = result.setdefault(user_id, {}).setdefault(device_id, {})
        by_key[f"{algorithm}:{key_id}"] = json.loads(key_json)

    with transaction.atomic():
        for device_pk, algorithm, key_id, key_json in _claim_oldest_keys(sorted(wanted)):
            hand_out(device_pk, algorithm, key_id, key_json)
            wanted.discard((device_pk, algorithm))
        if wanted:
            for row in _claim_fallback_keys(wanted):
                hand_out(row.device_id, row.algorithm, row.key_id, row.key_json)
    return result


def _devices_for_claims(claims: dict[str, dict[str, str]]) -> dict[tuple[str, str], int]:
    """{(user_id, device_id): device pk} for the claimed devices that exist (one query)."""
    device_ids = {device_id for by_device in claims.values() for device_id in by_device}
    rows = Device.objects.filter(
        user__user_id__in=list(claims), device_id__in=device_ids
    ).values_list("user__user_id", "device_id", "pk")
    return {
        (user_id, device_id): pk
        for user_id, device_id, pk in rows
        if device_id in claims.get(user_id, {})
    }


def _claim_oldest_keys(wanted: list[tuple[int, str]]) -> list[tuple[int, str, str, str]]:
    """Delete and return the oldest one-time key of each (device pk, algorithm).

    One statement. On PostgreSQL, ``FOR UPDATE SKIP LOCKED`` makes concurrent claims take
    different keys instead of waiting for (and then missing) the same one; SQLite runs one
    writer at a time, so its plain subquery is just as safe.
    """
    # Only our table name and placeholders are formatted into the SQL; values are params.
    table = OneTimeKey._meta.db_table
    params: list[Any] = [value for pair in wanted for value in pair]
    if connection.vendor == "postgresql":
        values = ", ".join(["(%s::bigint, %s::text)"] * len(wanted))
        pick = f"""
            SELECT k.id FROM (VALUES {values}) AS c(device_id, algorithm)
            CROSS JOIN LATERAL (
                SELECT o.id FROM {table} o
                WHERE o.device_id = c.device_id AND o.algorithm = c.algorithm
                ORDER BY o.id LIMIT 1 FOR UPDATE SKIP LOCKED
            ) AS k"""
    else:
        values = ", ".join(["(%s, %s)"] * len(wanted))
        pick = f"""
            SELECT (
                SELECT o.id FROM {table} o
                WHERE o.device_id = c.column1 AND o.algorithm = c.column2
                ORDER BY o.id LIMIT 1
            ) FROM (VALUES {values}) AS c"""
    sql = (
        f"DELETE FROM {table} WHERE id IN ({pick}) RETURNING device_id, algorithm, key_id, key_json"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(int(d), str(a), str(k), str(j)) for d, a, k, j in cursor.fetchall()]


def _claim_fallback_keys(wanted: set[tuple[int, str]]) -> list[FallbackKey]:
    """The fallback keys of the (device pk, algorithm) pairs left; mark them used."""
    candidates = FallbackKey.objects.filter(
        device_id__in={pk for pk, _ in wanted}, algorithm__in={alg for _, alg in wanted}
    )
    rows = [row for row in candidates if (row.device_id, row.algorithm) in wanted]
    unused = [row.pk for row in rows if not row.used]
    if unused:
        FallbackKey.objects.filter(pk__in=unused).update(used=True)
    return rows
