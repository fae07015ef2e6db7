"""Real Ed25519 keys for the E2EE tests: devices and cross-signing keys that sign what
they upload (signedjson over pynacl), as a client would."""

from __future__ import annotations

import copy
import secrets
from typing import Any

from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json
from signedjson.types import SigningKey
from unpaddedbase64 import encode_base64

from matrixhs.testing import MatrixTestCase

JsonDict = dict[str, Any]
UPLOAD = "/_matrix/client/v3/keys/upload"
QUERY = "/_matrix/client/v3/keys/query"
CLAIM = "/_matrix/client/v3/keys/claim"
SIGNING_UPLOAD = "/_matrix/client/v3/keys/device_signing/upload"
SIGNATURES_UPLOAD = "/_matrix/client/v3/keys/signatures/upload"
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


class E2eeTestCase(MatrixTestCase):
    """MatrixTestCase with a key-holding client device for alice, bob and mallory."""

    def setUp(self) -> None:
        super().setUp()
        self.devices = {
            user.user_id: ClientDevice(user.user_id, user.test_device_id)  # type: ignore[attr-defined]
            for user in (self.alice, self.bob, self.mallory)
        }

    def device_of(self, user: Any) -> ClientDevice:
        return self.devices[user.user_id]

    def upload(self, user: Any, **body: Any) -> JsonDict:
        response = self.api(user).post(UPLOAD, body)
        self.assertEqual(response.status_code, 200, response.body)
        return response.body  # type: ignore[no-any-return]

    def upload_device_keys(self, user: Any, one_time_keys: int = 0) -> ClientDevice:
        device = self.device_of(user)
        body: JsonDict = {"device_keys": device.device_keys()}
        if one_time_keys:
            body["one_time_keys"] = device.one_time_keys(one_time_keys)
        self.upload(user, **body)
        return device

    def query(self, user: Any, device_keys: JsonDict) -> JsonDict:
        response = self.api(user).post(QUERY, {"device_keys": device_keys})
        self.assertEqual(response.status_code, 200, response.body)
        return response.body  # type: ignore[no-any-return]

    def set_up_cross_signing(self, user: Any) -> CrossSigning:
        signing = CrossSigning(user.user_id)
        response = self.api(user).post(SIGNING_UPLOAD, signing.upload_body())
        self.assertEqual(response.status_code, 200, response.body)
        return signing
