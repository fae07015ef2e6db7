"""The server's Ed25519 signing key: generated on first start, kept in the data dir.

The file has the usual one-line format ``ed25519 <key version> <unpadded base64 seed>``,
so a key can move between homeserver implementations.

``server_keys()`` is the key store signature checks use (``matrixhs.protocol.signing.
ServerKeys``): for now it knows this server's own key only, so a signature of any other
server does not verify. Federation plugs the keys of remote servers in here.
"""

from __future__ import annotations

import io
import secrets
import string
from functools import lru_cache

from django.conf import settings
from signedjson.key import (
    generate_signing_key,
    get_verify_key,
    read_signing_keys,
    write_signing_keys,
)
from signedjson.types import SigningKey

from matrixhs.files import read_or_create
from matrixhs.protocol.signing import ServerKeys, ServerVerifyKey


def _new_key_file() -> str:
    version = "a_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(4))
    out = io.StringIO()
    write_signing_keys(out, [generate_signing_key(version)])
    return out.getvalue()


@lru_cache(maxsize=1)
def get_signing_key() -> SigningKey:
    """The key this server signs events and requests with (created if missing)."""
    text = read_or_create(settings.MATRIXHS_SIGNING_KEY_PATH, _new_key_file)
    keys = read_signing_keys(io.StringIO(text))
    if not keys:
        raise RuntimeError(f"No signing key in {settings.MATRIXHS_SIGNING_KEY_PATH}")
    return keys[0]


def key_id(key: SigningKey) -> str:
    return f"{key.alg}:{key.version}"


class LocalServerKeys:
    """The public keys of this server (its current signing key), as a ``ServerKeys``."""

    def get_verify_key(self, server_name: str, key_id: str) -> ServerVerifyKey | None:
        """See ``matrixhs.protocol.signing.ServerKeys.get_verify_key``."""
        key = get_signing_key()
        if server_name != settings.MATRIXHS_SERVER_NAME or f"{key.alg}:{key.version}" != key_id:
            return None
        return ServerVerifyKey(get_verify_key(key))


def server_keys() -> ServerKeys:
    """The key store for signature checks on events (auth rule 4.2)."""
    return LocalServerKeys()
