"""Real Ed25519 keys of a client: devices and cross-signing keys that sign what they
upload (signedjson over pynacl), as a client would. Free of Django, for the benchmarks too."""

from __future__ import annotations

import copy
import secrets
from typing import Any

from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json
from signedjson.types import SigningKey
from unpaddedbase64 import encode_base64

JsonDict = dict[str, Any]
ALGORITHMS = ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"]


def random_curve25519() -> str:
    return encode_base64(secrets.token_bytes(32))


class ClientDevice:
    """A client device: its Ed25519 key signs its device keys and one-time keys."""

    def __init__(self, user_id: str, device_id: str) -> None:
        self.user_id = user_id
        self.device_id = device_id
        self.signing_key = generate_signing_key(device_id)
        self.ed25519 = encode_verify_key_base64(get_verify_key(self.signing_key))
        self.key_id = f"ed25519:{device_id}"
        self.curve25519 = random_curve25519()
        self._next_key = 0

    def device_keys(self, **extra: Any) -> JsonDict:
        keys = {
            "user_id": self.user_id,
            "device_id": self.device_id,
            "algorithms": ALGORITHMS,
            "keys": {
                f"curve25519:{self.device_id}": self.curve25519,
                self.key_id: self.ed25519,
            },
            **extra,
        }
        return sign_json(keys, self.user_id, self.signing_key)

    def one_time_keys(self, count: int, algorithm: str = "signed_curve25519") -> JsonDict:
        keys = {}
        for _ in range(count):
            self._next_key += 1
            key_id = f"{algorithm}:AAAA{self._next_key:04d}"
            keys[key_id] = self.sign({"key": random_curve25519()})
        return keys

    def fallback_key(self, key_id: str = "FALLBACK1") -> JsonDict:
        key = self.sign({"key": random_curve25519(), "fallback": True})
        return {f"signed_curve25519:{key_id}": key}

    def sign(self, obj: JsonDict) -> JsonDict:
        return sign_json(copy.deepcopy(obj), self.user_id, self.signing_key)


def new_cross_signing_key() -> tuple[SigningKey, str]:
    """A signing key whose version is its own public key (cross-signing key IDs)."""
    key = generate_signing_key("new")
    public = encode_verify_key_base64(get_verify_key(key))
    key.version = public
    return key, public


class CrossSigning:
    """A user's master, self-signing and user-signing keys."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.master_key, self.master_public = new_cross_signing_key()
        self.ssk, self.ssk_public = new_cross_signing_key()
        self.usk, self.usk_public = new_cross_signing_key()

    def _key(self, usage: str, public: str, signed_by: SigningKey | None) -> JsonDict:
        key = {"user_id": self.user_id, "usage": [usage], "keys": {f"ed25519:{public}": public}}
        return sign_json(key, self.user_id, signed_by) if signed_by is not None else key

    def master(self) -> JsonDict:
        return self._key("master", self.master_public, None)

    def self_signing(self) -> JsonDict:
        return self._key("self_signing", self.ssk_public, self.master_key)

    def user_signing(self) -> JsonDict:
        return self._key("user_signing", self.usk_public, self.master_key)

    def upload_body(self) -> JsonDict:
        return {
            "master_key": self.master(),
            "self_signing_key": self.self_signing(),
            "user_signing_key": self.user_signing(),
        }

    def sign_with(self, key: SigningKey, obj: JsonDict) -> JsonDict:
        signed = copy.deepcopy(obj)
        signed.pop("unsigned", None)
        return sign_json(signed, self.user_id, key)
