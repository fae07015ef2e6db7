"""Signing JSON and events (spec appendix "Signing JSON"; server-server API "Signing Events").

Signing and verification themselves are ``signedjson``'s (Ed25519 via pynacl over canonical
JSON); this module adds the Matrix rules around them: the strict canonical JSON check,
hashing then signing the redacted event, which servers must have signed an event, and
building a complete PDU.
"""

from __future__ import annotations

import binascii
import dataclasses
import secrets
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import nacl.exceptions
from signedjson.key import (
    decode_signing_key_base64,
    decode_verify_key_bytes,
    encode_signing_key_base64,
    encode_verify_key_base64,
    get_verify_key,
)
from signedjson.key import generate_signing_key as _generate_signing_key
from signedjson.sign import SignatureVerifyException, verify_signed_json
from signedjson.sign import sign_json as _signedjson_sign_json
from signedjson.types import SigningKey, VerifyKey
from unpaddedbase64 import decode_base64

from matrixhs.protocol.canonical_json import InvalidCanonicalJson, check_canonical_json
from matrixhs.protocol.events import (
    EventTypes,
    InvalidEvent,
    JsonDict,
    Membership,
    check_size_limits,
    content_of,
    membership_of,
    sender_domain,
)
from matrixhs.protocol.hashing import add_content_hash, compute_event_id
from matrixhs.protocol.ids import server_name_of
from matrixhs.protocol.redaction import redact_event
from matrixhs.protocol.room_versions import EventFormat, RoomVersion

__all__ = [
    "InvalidSignature",
    "MemoryServerKeys",
    "ServerKeys",
    "ServerVerifyKey",
    "SigningKey",
    "VerifyKey",
    "build_pdu",
    "decode_signing_key",
    "decode_verify_key",
    "encode_signing_key",
    "encode_verify_key",
    "generate_signing_key",
    "key_id",
    "required_signature_servers",
    "sign_event",
    "sign_json",
    "signed_with_any_key",
    "verify_event_signature",
    "verify_event_signed_by",
    "verify_json",
    "verify_key_of",
]

_ED25519 = "ed25519"


class InvalidSignature(ValueError):
    """A signature is missing, malformed or does not verify."""


# --- keys -------------------------------------------------------------------------------


def key_id(key: SigningKey | VerifyKey) -> str:
    """The signing key identifier, ``algorithm:version`` (e.g. ``ed25519:a_AbCd``)."""
    return f"{key.alg}:{key.version}"


def generate_signing_key(version: str) -> SigningKey:
    """A new random Ed25519 signing key with key ID ``ed25519:<version>``."""
    return _generate_signing_key(version)


def decode_signing_key(signing_key_id: str, seed_base64: str) -> SigningKey:
    """Load an Ed25519 signing key from its unpadded-base64 32-byte seed.

    Raises:
        ValueError: unsupported algorithm or a malformed seed.
    """
    algorithm, _, version = signing_key_id.partition(":")
    if algorithm != _ED25519 or not version:
        raise ValueError(f"unsupported signing key ID {signing_key_id!r}")
    try:
        return decode_signing_key_base64(algorithm, version, seed_base64)
    except (binascii.Error, nacl.exceptions.ValueError) as exc:
        raise ValueError(f"malformed signing key seed: {exc}") from exc


def encode_signing_key(key: SigningKey) -> str:
    """The key's seed in unpadded base64 (what ``decode_signing_key`` reads)."""
    return encode_signing_key_base64(key)


def verify_key_of(key: SigningKey) -> VerifyKey:
    """The public half of a signing key, with the same key ID."""
    return get_verify_key(key)


def encode_verify_key(key: VerifyKey) -> str:
    """The public key in unpadded base64, as published in ``/_matrix/key/v2/server``."""
    return encode_verify_key_base64(key)


def decode_verify_key(verify_key_id: str, key_base64: str) -> VerifyKey:
    """Load a public key published under ``verify_key_id``.

    Raises:
        ValueError: unsupported algorithm or malformed key bytes.
    """
    try:
        return decode_verify_key_bytes(verify_key_id, decode_base64(key_base64))
    except (binascii.Error, nacl.exceptions.ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"malformed verify key: {exc}") from exc


# --- key stores -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ServerVerifyKey:
    """A server's public signing key as a key store knows it.

    Attributes:
        verify_key: the Ed25519 public key.
        valid_until_ts: until when (ms since the epoch) signatures made with the key count,
            from room version 5 (spec server-server API "Retrieving server keys":
            ``valid_until_ts``, or ``expired_ts`` for an old key); None: no limit known.
    """

    verify_key: VerifyKey
    valid_until_ts: int | None = None


class ServerKeys(Protocol):
    """Where signature checks find servers' public keys (a key store)."""

    def get_verify_key(self, server_name: str, key_id: str) -> ServerVerifyKey | None:
        """``server_name``'s public key with ID ``key_id`` (e.g. ``ed25519:abc``), or None
        when the store does not know it."""
        ...


@dataclasses.dataclass
class MemoryServerKeys:
    """A ``ServerKeys`` over a dict keyed by (server name, key ID)."""

    keys: dict[tuple[str, str], ServerVerifyKey] = dataclasses.field(default_factory=dict)

    def add(
        self, server_name: str, verify_key: VerifyKey, valid_until_ts: int | None = None
    ) -> None:
        """Know ``verify_key`` (under its own key ID) as one of ``server_name``'s keys."""
        self.keys[(server_name, key_id(verify_key))] = ServerVerifyKey(verify_key, valid_until_ts)

    def get_verify_key(self, server_name: str, key_id: str) -> ServerVerifyKey | None:
        """See ``ServerKeys.get_verify_key``."""
        return self.keys.get((server_name, key_id))


# --- JSON ---------------------------------------------------------------------------------


def _without_signatures(json_object: Mapping[str, Any]) -> JsonDict:
    return {k: v for k, v in json_object.items() if k not in ("signatures", "unsigned")}


def sign_json(
    json_object: Mapping[str, Any], signer: str, signing_key: SigningKey, *, strict: bool = True
) -> JsonDict:
    """Return a copy of ``json_object`` signed by ``signer`` (appendix "Signing Details").

    Existing signatures are kept; ``unsigned`` is not covered by the signature.

    Raises:
        InvalidCanonicalJson: (strict) the object holds floats or out-of-range integers.
    """
    if strict:
        check_canonical_json(_without_signatures(json_object))
    copy = dict(json_object)
    signatures = json_object.get("signatures")
    if isinstance(signatures, dict):
        copy["signatures"] = {name: dict(sigs) for name, sigs in signatures.items()}
    signed: JsonDict = _signedjson_sign_json(copy, signer, signing_key)
    return signed


def verify_json(
    json_object: Mapping[str, Any], signer: str, verify_key: VerifyKey, *, strict: bool = True
) -> None:
    """Check ``signer``'s signature under ``verify_key`` (appendix "Checking for a Signature").

    Raises:
        InvalidSignature: the signature is missing, malformed or wrong.
        InvalidCanonicalJson: (strict) the object holds floats or out-of-range integers.
    """
    if strict:
        check_canonical_json(_without_signatures(json_object))
    try:
        verify_signed_json(dict(json_object), signer, verify_key)
    except (SignatureVerifyException, TypeError, AttributeError) as exc:
        raise InvalidSignature(str(exc)) from exc


def signed_with_any_key(json_object: Mapping[str, Any], public_keys: Iterable[str]) -> bool:
    """Whether any Ed25519 signature on the object verifies under any of ``public_keys``.

    Used for third-party invites, whose ``signed`` object is signed by an identity server
    with one of the keys listed in the ``m.room.third_party_invite`` event.
    """
    signatures = json_object.get("signatures")
    if not isinstance(signatures, dict):
        return False
    keys = [k for k in public_keys if isinstance(k, str)]
    for signer, signer_sigs in signatures.items():
        if not isinstance(signer_sigs, dict):
            continue
        for sig_key_id in signer_sigs:
            if not isinstance(sig_key_id, str) or not sig_key_id.startswith(_ED25519 + ":"):
                continue
            for public_key in keys:
                try:
                    verify_json(json_object, signer, decode_verify_key(sig_key_id, public_key))
                except (InvalidSignature, ValueError):
                    continue
                return True
    return False


# --- events -------------------------------------------------------------------------------


def sign_event(
    event: Mapping[str, Any], server_name: str, signing_key: SigningKey, rv: RoomVersion
) -> JsonDict:
    """Hash and sign an event: content hash, then a signature over the redacted form.

    Returns a new dict; signatures already on the event are kept, so a resident server can
    add its own signature to a remote join.

    Raises:
        InvalidCanonicalJson: the event cannot be encoded as canonical JSON.
    """
    hashed = add_content_hash(event, rv)
    signed_redacted = sign_json(
        redact_event(hashed, rv), server_name, signing_key, strict=rv.strict_canonical_json
    )
    hashed["signatures"] = signed_redacted["signatures"]
    return hashed


def verify_event_signature(
    event: Mapping[str, Any], server_name: str, verify_key: VerifyKey, rv: RoomVersion
) -> None:
    """Check ``server_name``'s signature on an event (over its redacted form).

    Succeeds for the full event and for a redacted copy alike.

    Raises:
        InvalidSignature: the signature is missing or wrong.
        InvalidCanonicalJson: the event cannot be encoded as canonical JSON.
    """
    verify_json(redact_event(event, rv), server_name, verify_key, strict=rv.strict_canonical_json)


def verify_event_signed_by(
    event: Mapping[str, Any], server_name: str, keys: ServerKeys, rv: RoomVersion
) -> None:
    """Check that ``server_name`` validly signed the event with a key ``keys`` knows.

    Any one of the server's Ed25519 signatures on the event will do. From room version 5
    the key must also be valid at the event's ``origin_server_ts``.

    Raises:
        InvalidSignature: no signature of ``server_name`` verifies under a key it knows.
    """
    signatures = event.get("signatures")
    server_signatures = signatures.get(server_name) if isinstance(signatures, dict) else None
    if not isinstance(server_signatures, dict) or not server_signatures:
        raise InvalidSignature(f"the event is not signed by {server_name}")
    timestamp = event.get("origin_server_ts")
    for signature_key_id in server_signatures:
        if not isinstance(signature_key_id, str) or not signature_key_id.startswith(_ED25519 + ":"):
            continue
        known = keys.get_verify_key(server_name, signature_key_id)
        if known is None or not _valid_at(known, timestamp, rv):
            continue
        try:
            verify_event_signature(event, server_name, known.verify_key, rv)
        except (InvalidSignature, InvalidCanonicalJson):
            continue
        return
    raise InvalidSignature(f"no valid signature of {server_name} under a key we know")


def _valid_at(key: ServerVerifyKey, timestamp: object, rv: RoomVersion) -> bool:
    if not rv.enforce_key_validity or key.valid_until_ts is None:
        return True
    return isinstance(timestamp, int) and timestamp <= key.valid_until_ts


def required_signature_servers(event: Mapping[str, Any], rv: RoomVersion) -> set[str]:
    """Servers whose valid signature an event needs (server-server API "Validating hashes
    and signatures on received events").

    * the sender's server, except for an invite made from a third-party invite;
    * v1/v2: the server named in the ``event_id``;
    * restricted joins (v8+): the server of ``join_authorised_via_users_server``
      (auth rule 4.2, 5.2 in v12).
    """
    servers: set[str] = set()
    content = content_of(event)
    is_third_party_invite = (
        event.get("type") == EventTypes.MEMBER
        and membership_of(event) == Membership.INVITE
        and "third_party_invite" in content
    )
    if not is_third_party_invite:
        servers.add(sender_domain(event))
    event_id = event.get("event_id")
    if rv.event_format is EventFormat.V1 and isinstance(event_id, str) and ":" in event_id:
        servers.add(server_name_of(event_id))
    authoriser = content.get("join_authorised_via_users_server")
    if (
        rv.restricted_join_rule
        and event.get("type") == EventTypes.MEMBER
        and membership_of(event) == Membership.JOIN
        and isinstance(authoriser, str)
    ):
        servers.add(server_name_of(authoriser))
    servers.discard("")
    return servers


_REQUIRED_PDU_FIELDS = (
    "type",
    "sender",
    "content",
    "prev_events",
    "auth_events",
    "depth",
    "origin_server_ts",
)


def build_pdu(
    partial: Mapping[str, Any], server_name: str, signing_key: SigningKey, rv: RoomVersion
) -> tuple[str, JsonDict]:
    """Turn a partial event into a complete, hashed and signed PDU.

    ``partial`` holds ``type``, ``sender``, ``content``, ``prev_events`` and
    ``auth_events`` (lists of event IDs), ``depth``, ``origin_server_ts``, ``room_id``
    (except for a v12 create event, which has none) and, for state events,
    ``state_key``. A top-level ``redacts`` is moved into ``content`` from v11. For v1/v2 a
    random ``$opaque:server_name`` event ID is made unless ``partial`` has one, and
    references become ``[event_id, {}]`` pairs.

    Returns:
        ``(event_id, pdu)``. For a v12 create event, the room ID is
        ``"!" + event_id[1:]``.

    Raises:
        InvalidEvent: a required field is missing or ``room_id`` is wrongly (not) given.
        EventTooLarge: the PDU is over a size limit.
        InvalidCanonicalJson: the event cannot be encoded as canonical JSON.
    """
    pdu = _shape_pdu(partial, server_name, rv)
    signed = sign_event(pdu, server_name, signing_key, rv)
    check_size_limits(signed, rv)
    return compute_event_id(signed, rv), signed


def _shape_pdu(partial: Mapping[str, Any], server_name: str, rv: RoomVersion) -> JsonDict:
    missing = [field for field in _REQUIRED_PDU_FIELDS if field not in partial]
    if missing:
        raise InvalidEvent(f"missing PDU fields: {', '.join(missing)}")
    pdu = {key: value for key, value in partial.items() if key not in ("hashes", "signatures")}
    is_create = pdu["type"] == EventTypes.CREATE
    if rv.room_id_from_create_event and is_create:
        if "room_id" in pdu:
            raise InvalidEvent("a create event has no room_id in this room version")
    elif not isinstance(pdu.get("room_id"), str):
        raise InvalidEvent("missing PDU field: room_id")
    if rv.redacts_in_content and "redacts" in pdu:
        pdu["content"] = {**pdu["content"], "redacts": pdu.pop("redacts")}
    if rv.event_format is EventFormat.V1:
        pdu.setdefault("event_id", f"${secrets.token_urlsafe(18)}:{server_name}")
        pdu["prev_events"] = [[event_id, {}] for event_id in pdu["prev_events"]]
        pdu["auth_events"] = [[event_id, {}] for event_id in pdu["auth_events"]]
    else:
        pdu.pop("event_id", None)
        pdu["prev_events"] = list(pdu["prev_events"])
        pdu["auth_events"] = list(pdu["auth_events"])
    pdu["hashes"] = {}
    pdu["signatures"] = {}
    return pdu
