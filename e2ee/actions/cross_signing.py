"""Cross-signing: upload the master, self-signing and user-signing keys, and signatures
made with them (spec "Cross-signing").

Who may see which signature is decided when keys are read (e2ee.queries); here every
signature is checked against the key it signs and the key that made it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q

from accounts.models import Device, User
from e2ee.actions.devices import record_device_list_change, share_signing_keys
from e2ee.errors import BadSignature
from e2ee.models import CrossSigningKey, CrossSigningSignature, DeviceKeys
from e2ee.signed_keys import (
    ED25519,
    ED25519_KEY_LENGTH,
    canonical_text,
    is_ed25519_key,
    is_signature_map,
    signed_part,
    verify_signature,
)
from matrixhs.errors import (
    Codes,
    Forbidden,
    InvalidParam,
    JsonDict,
    MatrixError,
    MissingParam,
    NotFound,
)
from matrixhs.time import now_ms

KeyType = CrossSigningKey.KeyType
#: Body field of /keys/device_signing/upload -> key type.
KEY_FIELDS = {
    "master_key": KeyType.MASTER,
    "self_signing_key": KeyType.SELF_SIGNING,
    "user_signing_key": KeyType.USER_SIGNING,
}


@dataclass(frozen=True)
class CheckedKey:
    key_type: str
    public_key: str
    key_json: str

    @property
    def key_id(self) -> str:
        return f"{ED25519}:{self.public_key}"


@dataclass
class SigningKeysUpload:
    """A checked /keys/device_signing/upload: the keys that differ from the stored ones."""

    changed: dict[str, CheckedKey] = field(default_factory=dict)
    #: Cross-signing is set up already and this would change it: UIA is needed.
    replaces_existing: bool = False


# --- /keys/device_signing/upload -------------------------------------------------------------


def check_signing_keys_upload(user: User, body: JsonDict) -> SigningKeysUpload:
    """Check the cross-signing keys of an upload against each other and the stored ones.

    Raises:
        InvalidParam: a key is malformed, not the user's, or not of its kind.
        MissingParam: a self- or user-signing key but no master key, sent or stored.
        BadSignature: a self- or user-signing key not signed by the master key.
        Forbidden: a public key is the ID of one of the user's devices.
    """
    stored = {row.key_type: row for row in CrossSigningKey.objects.filter(user=user)}
    new = {
        key_type: _check_cross_signing_key(body[name], user.user_id, key_type)
        for name, key_type in KEY_FIELDS.items()
        if body.get(name) is not None
    }
    master = new.get(KeyType.MASTER) or (
        CheckedKey(KeyType.MASTER, stored[KeyType.MASTER].public_key, "")
        if KeyType.MASTER in stored
        else None
    )
    for key_type in (KeyType.SELF_SIGNING, KeyType.USER_SIGNING):
        if key_type not in new:
            continue
        if master is None:
            raise MissingParam("No master key available")
        try:
            verify_signature(
                json.loads(new[key_type].key_json), user.user_id, master.key_id, master.public_key
            )
        except BadSignature as exc:
            raise BadSignature(f"Invalid signature on {key_type} key") from exc
    public_keys = [key.public_key for key in new.values()]
    if Device.objects.filter(user=user, device_id__in=public_keys).exists():
        raise Forbidden("Key ID in use")
    changed = {
        key_type: key
        for key_type, key in new.items()
        if key_type not in stored or stored[key_type].key_json != key.key_json
    }
    return SigningKeysUpload(changed, KeyType.MASTER in stored and bool(changed))


def _check_cross_signing_key(key: Any, user_id: str, key_type: str) -> CheckedKey:
    """Raises: InvalidParam: not a well-formed cross-signing key of ``key_type``."""
    if not isinstance(key, dict) or key.get("user_id") != user_id:
        raise InvalidParam(f"Invalid {key_type} key: it must belong to {user_id}")
    usage = key.get("usage")
    if not isinstance(usage, list) or key_type not in usage:
        raise InvalidParam(f"Invalid {key_type} key: its usage must include {key_type}")
    keys = key.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        raise InvalidParam(f"Invalid {key_type} key: it must hold exactly one public key")
    ((key_id, public_key),) = keys.items()
    if (
        not isinstance(public_key, str)
        or key_id != f"{ED25519}:{public_key}"
        or len(public_key) != ED25519_KEY_LENGTH
        or not is_ed25519_key(key_id, public_key)
    ):
        raise InvalidParam(f"Invalid {key_type} key: expected ed25519:<public key>")
    if "signatures" in key and not is_signature_map(key["signatures"]):
        raise InvalidParam(f"Invalid {key_type} key: malformed signatures")
    body = {name: value for name, value in key.items() if name != "unsigned"}
    return CheckedKey(key_type, public_key, canonical_text(body, f"{key_type} key"))


def do_upload_signing_keys(user: User, upload: SigningKeysUpload) -> None:
    """Store the changed cross-signing keys.

    A new master or self-signing key is a device-list change for everyone who shares a
    room with the user; a new user-signing key is news for the user alone.
    """
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()
        for key in upload.changed.values():
            _replace_key(user, key)
        public = {KeyType.MASTER, KeyType.SELF_SIGNING} & set(upload.changed)
        if public:
            record_device_list_change([user.user_id])
            share_signing_keys(user.user_id)
        if KeyType.USER_SIGNING in upload.changed:
            record_device_list_change([user.user_id], observer_user_id=user.user_id)


def _replace_key(user: User, key: CheckedKey) -> None:
    old = CrossSigningKey.objects.filter(user=user, key_type=key.key_type).first()
    CrossSigningKey.objects.update_or_create(
        user=user,
        key_type=key.key_type,
        defaults={"public_key": key.public_key, "key_json": key.key_json, "updated_ts": now_ms()},
    )
    if old is not None and old.public_key != key.public_key:
        # Signatures of the replaced key, and made with it, are void.
        CrossSigningSignature.objects.filter(
            Q(target_user_id=user.user_id, target_key_id=old.public_key)
            | Q(signer_user_id=user.user_id, signing_key_id=f"{ED25519}:{old.public_key}")
        ).delete()


# --- /keys/signatures/upload ------------------------------------------------------------------


@dataclass
class _SignatureBatch:
    """Signatures checked so far, and the failures, per user and key ID."""

    signer: str
    rows: list[CrossSigningSignature] = field(default_factory=list)
    failures: dict[str, dict[str, JsonDict]] = field(default_factory=dict)

    def add(self, signing_key_id: str, target_user_id: str, target_key_id: str, sig: str) -> None:
        self.rows.append(
            CrossSigningSignature(
                signer_user_id=self.signer,
                signing_key_id=signing_key_id,
                target_user_id=target_user_id,
                target_key_id=target_key_id,
                signature=sig,
            )
        )

    def fail(self, user_id: str, key_id: str, error: MatrixError) -> None:
        self.failures.setdefault(user_id, {})[key_id] = {
            "errcode": error.errcode,
            "error": error.msg,
        }


def check_signatures_body(body: JsonDict) -> dict[str, dict[str, JsonDict]]:
    """Raises: InvalidParam: not a map of user ID to key ID to signed object."""
    for by_key in body.values():
        if not isinstance(by_key, dict) or not all(isinstance(k, dict) for k in by_key.values()):
            raise InvalidParam("Expected a map of user ID to key ID to signed object")
    return body


def do_upload_signatures(user: User, body: dict[str, dict[str, JsonDict]]) -> JsonDict:
    """Check and store the signatures of a /keys/signatures/upload.

    Own devices must be signed with the user's self-signing key, the own master key with
    the user's devices, and other users' master keys with the user's user-signing key.
    Each signature stands alone: failures are reported per user and key, the rest stored.

    Returns:
        ``{"failures": {user_id: {key_id: {"errcode", "error"}}}}``
    """
    batch = _SignatureBatch(user.user_id)
    with transaction.atomic():
        keys = _cross_signing_keys([user.user_id, *body])
        own = keys.get(user.user_id, {})
        if body.get(user.user_id):
            _check_own_signatures(user, own, body[user.user_id], batch)
        for target_user_id, signed in body.items():
            if target_user_id != user.user_id:
                _check_other_signatures(
                    user, own, keys.get(target_user_id, {}), target_user_id, signed, batch
                )
        CrossSigningSignature.objects.bulk_create(batch.rows, ignore_conflicts=True)
        targets = {r.target_key_id for r in batch.rows if r.target_user_id == user.user_id}
        if targets:
            devices = Device.objects.filter(user=user, device_id__in=targets).values_list(
                "device_id", flat=True
            )
            record_device_list_change([user.user_id], device_ids=devices)
        others = {row.target_user_id for row in batch.rows} - {user.user_id}
        if others:
            record_device_list_change(others, observer_user_id=user.user_id)
    return {"failures": batch.failures}


def _cross_signing_keys(user_ids: list[str]) -> dict[str, dict[str, CrossSigningKey]]:
    keys: dict[str, dict[str, CrossSigningKey]] = {}
    for row in CrossSigningKey.objects.filter(user__user_id__in=user_ids).select_related("user"):
        keys.setdefault(row.user.user_id, {})[row.key_type] = row
    return keys


def _check_own_signatures(
    user: User, own: dict[str, CrossSigningKey], signed: dict[str, JsonDict], batch: _SignatureBatch
) -> None:
    """Devices signed by the self-signing key; the master key signed by devices."""
    devices = {
        row.device.device_id: json.loads(row.key_json)
        for row in DeviceKeys.objects.filter(device__user=user).select_related("device")
    }
    master = own.get(KeyType.MASTER)
    for key_id, obj in signed.items():
        try:
            if master is not None and key_id == master.public_key:
                _check_master_signed_by_devices(user.user_id, master, obj, devices, batch)
                continue
            if key_id not in devices:
                raise NotFound("Unknown device")
            ssk = own.get(KeyType.SELF_SIGNING)
            if ssk is None:
                raise NotFound("No self-signing key found")
            sig = _check_signed_copy(obj, devices[key_id], user.user_id, ssk)
            batch.add(f"{ED25519}:{ssk.public_key}", user.user_id, key_id, sig)
        except MatrixError as exc:
            batch.fail(user.user_id, key_id, exc)


def _check_master_signed_by_devices(
    user_id: str,
    master: CrossSigningKey,
    obj: JsonDict,
    devices: dict[str, JsonDict],
    batch: _SignatureBatch,
) -> None:
    stored = json.loads(master.key_json)
    _check_same_key(obj, stored)
    sigs = obj.get("signatures", {}).get(user_id)
    if not isinstance(sigs, dict) or not sigs:
        raise BadSignature("No signature by the user")
    new = {}
    for signing_key_id, sig in sigs.items():
        if stored.get("signatures", {}).get(user_id, {}).get(signing_key_id) == sig:
            continue  # already part of the key
        algorithm, _, device_id = signing_key_id.partition(":")
        public_key = devices.get(device_id, {}).get("keys", {}).get(signing_key_id)
        if algorithm != ED25519 or not isinstance(public_key, str):
            raise BadSignature(f"{signing_key_id} is not a key of one of the user's devices")
        verify_signature(obj, user_id, signing_key_id, public_key)
        new[signing_key_id] = sig
    for signing_key_id, sig in new.items():
        batch.add(signing_key_id, user_id, master.public_key, sig)


def _check_other_signatures(
    user: User,
    own: dict[str, CrossSigningKey],
    target: dict[str, CrossSigningKey],
    target_user_id: str,
    signed: dict[str, JsonDict],
    batch: _SignatureBatch,
) -> None:
    """Other users' master keys, signed by the user's user-signing key."""
    usk = own.get(KeyType.USER_SIGNING)
    master = target.get(KeyType.MASTER)
    for key_id, obj in signed.items():
        try:
            if usk is None:
                raise NotFound("No user-signing key found")
            if master is None or key_id != master.public_key:
                raise NotFound(f"Unknown master key for {target_user_id}")
            sig = _check_signed_copy(obj, json.loads(master.key_json), user.user_id, usk)
            batch.add(f"{ED25519}:{usk.public_key}", target_user_id, key_id, sig)
        except MatrixError as exc:
            batch.fail(target_user_id, key_id, exc)


def _check_signed_copy(obj: JsonDict, stored: JsonDict, signer: str, key: CrossSigningKey) -> str:
    """The signature ``signer`` made with ``key`` on a copy of ``stored``.

    Raises:
        MatrixError: the copy differs from the stored key.
        BadSignature: no such signature, or it does not verify.
    """
    _check_same_key(obj, stored)
    key_id = f"{ED25519}:{key.public_key}"
    sig = obj.get("signatures", {}).get(signer, {}).get(key_id)
    if not isinstance(sig, str):
        raise BadSignature(f"No signature by {key_id}")
    verify_signature(obj, signer, key_id, key.public_key)
    return sig


def _check_same_key(obj: JsonDict, stored: JsonDict) -> None:
    """Raises: MatrixError: 400 M_UNKNOWN when the signed object is not the stored key."""
    if not is_signature_map(obj.get("signatures", {})):
        raise BadSignature("Malformed signatures")
    if signed_part(obj) != signed_part(stored):
        raise MatrixError(400, Codes.UNKNOWN, "Key does not match")
