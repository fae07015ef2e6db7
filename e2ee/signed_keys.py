"""Signed key objects: their canonical text, comparison and signature checks.

Keys and signatures are Ed25519 over canonical JSON (spec appendix "Signing JSON"); the
work is done by matrixhs.protocol, this module maps its failures to Matrix errors.
"""

from __future__ import annotations

from typing import Any

from e2ee.errors import BadSignature
from matrixhs.errors import BadJson, JsonDict
from matrixhs.protocol.canonical_json import InvalidCanonicalJson, encode_canonical_json
from matrixhs.protocol.signing import InvalidSignature, decode_verify_key, verify_json

ED25519 = "ed25519"
#: Ed25519 public keys are 32 bytes: 43 characters of unpadded base64.
ED25519_KEY_LENGTH = 43


def canonical_text(value: Any, what: str) -> str:
    """``value`` as canonical JSON text.

    Raises:
        BadJson: it holds floats or integers out of the canonical range.
    """
    try:
        return encode_canonical_json(value).decode("utf-8")
    except InvalidCanonicalJson as exc:
        raise BadJson(f"{what} is not valid canonical JSON: {exc}") from exc


def signed_part(key: JsonDict) -> JsonDict:
    """What a signature covers: the object without ``signatures`` and ``unsigned``."""
    return {name: value for name, value in key.items() if name not in ("signatures", "unsigned")}


def is_signature_map(value: Any) -> bool:
    """``{user_id: {key_id: signature}}`` with strings all the way down."""
    return isinstance(value, dict) and all(
        isinstance(by_key, dict) and all(isinstance(sig, str) for sig in by_key.values())
        for by_key in value.values()
    )


def is_ed25519_key(key_id: str, public_key: str) -> bool:
    """Whether ``public_key`` decodes to an Ed25519 public key."""
    try:
        decode_verify_key(key_id, public_key)
    except ValueError:
        return False
    return key_id.startswith(f"{ED25519}:")


def verify_signature(key: JsonDict, signer: str, key_id: str, public_key: str) -> None:
    """Check ``signer``'s signature on ``key`` made with ``key_id`` (an Ed25519 key).

    Raises:
        BadSignature: the signature is missing or wrong, or the key cannot be used.
    """
    try:
        verify_key = decode_verify_key(key_id, public_key)
        verify_json(key, signer, verify_key)
    except (InvalidSignature, InvalidCanonicalJson, ValueError) as exc:
        raise BadSignature(f"Invalid signature by {key_id}") from exc


def signature_of(key: JsonDict, signer: str, key_id: str) -> str | None:
    """The signature ``signer`` put on ``key`` with ``key_id``, if any."""
    signatures = key.get("signatures")
    if not isinstance(signatures, dict) or not isinstance(signatures.get(signer), dict):
        return None
    value = signatures[signer].get(key_id)
    return value if isinstance(value, str) else None
