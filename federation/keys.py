"""Server signing keys: this server's own, and the key ring of other servers' public keys.

Our key lives in the data dir in the usual one-line format ``ed25519 <key version>
<unpadded base64 seed>``, so a key can move between homeserver implementations. After a
rotation (``manage.py rotate_signing_key``) the previous public key stays in the
database as an old key, with the time it expired, and is published in
``old_verify_keys``.

``server_keys()`` is the key store signature checks use (``matrixhs.protocol.signing.
ServerKeys``). Other servers' keys come from the database; a key it does not know, or
whose validity ran out, is fetched from the server itself (GET /_matrix/key/v2/server,
self-signed) or, failing that, from the notaries in MATRIXHS_FEDERATION_TRUSTED_KEY_SERVERS,
at most once per MATRIXHS_FEDERATION_KEY_REFETCH_S per server. Each key carries its
``valid_until_ts``: the protocol core refuses events signed after it (room versions 5+).
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import secrets
import string
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.cache import cache
from signedjson.key import generate_signing_key, read_signing_keys, write_signing_keys
from signedjson.types import SigningKey

from federation.models import ServerKey, ServerKeysResponse
from matrixhs.errors import JsonDict
from matrixhs.protocol.canonical_json import encode_canonical_json
from matrixhs.protocol.signing import (
    InvalidSignature,
    ServerKeys,
    ServerVerifyKey,
    decode_verify_key,
    encode_verify_key,
    sign_json,
    verify_json,
    verify_key_of,
)
from matrixhs.time import now_ms

logger = logging.getLogger(__name__)


def new_key_file() -> str:
    version = "a_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(4))
    out = io.StringIO()
    write_signing_keys(out, [generate_signing_key(version)])
    return out.getvalue()


@lru_cache(maxsize=1)
def get_signing_key() -> SigningKey:
    """The key this server signs events and requests with (created if missing)."""
    from matrixhs.files import read_or_create

    text = read_or_create(settings.MATRIXHS_SIGNING_KEY_PATH, new_key_file)
    keys = read_signing_keys(io.StringIO(text))
    if not keys:
        raise RuntimeError(f"No signing key in {settings.MATRIXHS_SIGNING_KEY_PATH}")
    return keys[0]


def key_id(key: Any) -> str:
    return f"{key.alg}:{key.version}"


# --- Our keys, as other servers see them ---------------------------------------------------


def own_keys_response() -> JsonDict:
    """GET /_matrix/key/v2/server: our current key, old keys, signed with the current one."""
    key = get_signing_key()
    server_name = settings.MATRIXHS_SERVER_NAME
    old = ServerKey.objects.filter(server_name=server_name, expired_ts__isnull=False).exclude(
        key_id=key_id(key)
    )
    body: JsonDict = {
        "server_name": server_name,
        "verify_keys": {key_id(key): {"key": encode_verify_key(verify_key_of(key))}},
        "old_verify_keys": {
            row.key_id: {"key": row.verify_key, "expired_ts": row.expired_ts} for row in old
        },
        "valid_until_ts": now_ms() + settings.MATRIXHS_FEDERATION_KEY_VALIDITY_S * 1000,
    }
    return sign_json(body, server_name, key)


def retire_key(old: SigningKey, expired_ts: int) -> None:
    """Keep ``old``'s public key as an old key of ours (after a rotation)."""
    ServerKey.objects.update_or_create(
        server_name=settings.MATRIXHS_SERVER_NAME,
        key_id=key_id(old),
        defaults={
            "verify_key": encode_verify_key(verify_key_of(old)),
            "valid_until_ts": expired_ts,
            "expired_ts": expired_ts,
            "fetched_ms": expired_ts,
        },
    )


def rotate_signing_key() -> tuple[SigningKey, SigningKey]:
    """Replace our signing key by a new one; the old public key is kept (and published
    in old_verify_keys) with expired_ts now. A running server picks the new key up when
    restarted. Returns (old, new)."""
    import os

    from matrixhs.files import create_private_file

    old = get_signing_key()
    path = settings.MATRIXHS_SIGNING_KEY_PATH
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    tmp.unlink(missing_ok=True)
    create_private_file(tmp, new_key_file())
    retire_key(old, now_ms())
    os.replace(tmp, path)
    get_signing_key.cache_clear()
    return old, get_signing_key()


# --- Other servers' keys ---------------------------------------------------------------


class InvalidKeyResponse(ValueError):
    """A key response that is not the server's, not signed by it, or malformed."""


def check_keys_response(server_name: str, response: Any) -> JsonDict:
    """A server's key response, once it is that server's and self-signed.

    Raises:
        InvalidKeyResponse: it is not.
    """
    if not isinstance(response, dict) or response.get("server_name") != server_name:
        raise InvalidKeyResponse(f"Not a key response of {server_name}")
    if not isinstance(response.get("valid_until_ts"), int):
        raise InvalidKeyResponse("No valid_until_ts")
    verify_keys = response.get("verify_keys")
    if not isinstance(verify_keys, dict) or not verify_keys:
        raise InvalidKeyResponse("No verify_keys")
    signatures = response.get("signatures", {}).get(server_name, {})
    signed = False
    for name, entry in verify_keys.items():
        try:
            verify_key = decode_verify_key(name, entry["key"])
        except (InvalidSignature, KeyError, TypeError, ValueError) as exc:
            raise InvalidKeyResponse(f"Bad key {name}") from exc
        if name in signatures:
            try:
                verify_json(response, server_name, verify_key)
            except InvalidSignature as exc:
                raise InvalidKeyResponse(f"Bad signature by {name}") from exc
            signed = True
    if not signed:
        raise InvalidKeyResponse(f"Not signed by {server_name} with a key it lists")
    return response


def store_keys_response(server_name: str, response: JsonDict) -> None:
    """Remember the keys of a checked response, and the response itself."""
    now = now_ms()
    valid_until = response["valid_until_ts"]
    for name, entry in response["verify_keys"].items():
        ServerKey.objects.update_or_create(
            server_name=server_name,
            key_id=name,
            defaults={
                "verify_key": entry["key"],
                "valid_until_ts": valid_until,
                "expired_ts": None,
                "fetched_ms": now,
            },
        )
    for name, entry in (response.get("old_verify_keys") or {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("expired_ts"), int):
            continue
        try:
            decode_verify_key(name, entry["key"])
        except (InvalidSignature, KeyError, TypeError, ValueError):
            continue
        ServerKey.objects.update_or_create(
            server_name=server_name,
            key_id=name,
            defaults={
                "verify_key": entry["key"],
                "valid_until_ts": entry["expired_ts"],
                "expired_ts": entry["expired_ts"],
                "fetched_ms": now,
            },
        )
    ServerKeysResponse.objects.update_or_create(
        server_name=server_name,
        defaults={
            "response": encode_canonical_json(response).decode(),
            "valid_until_ts": valid_until,
            "fetched_ms": now,
        },
    )


KeyFetcher = Callable[[str], None]
"""``fetch(server_name)``: fetch and store the server's keys; raises on failure."""


def fetch_from_origin(server_name: str) -> None:
    """GET /_matrix/key/v2/server of the server itself."""
    from federation.transport.client import federation_client

    response = federation_client().get_server_keys(server_name)
    store_keys_response(server_name, check_keys_response(server_name, response))


def fetch_from_notaries(server_name: str) -> None:
    """Ask the configured notaries; the answer must carry both the server's signature and
    the notary's (whose own keys come from the notary itself)."""
    from federation.transport.client import federation_client

    errors = []
    for notary in settings.MATRIXHS_FEDERATION_TRUSTED_KEY_SERVERS:
        try:
            answers = federation_client().query_notary(notary, server_name)
            for answer in answers:
                response = check_keys_response(server_name, answer)
                _check_notary_signature(notary, response)
                store_keys_response(server_name, response)
            if answers:
                return
        except Exception as exc:  # the next notary
            errors.append(f"{notary}: {exc}")
    raise InvalidKeyResponse("; ".join(errors) or "No notary answered")


def _check_notary_signature(notary: str, response: JsonDict) -> None:
    keys = KeyRing(fetchers=(fetch_from_origin,))
    for name in response.get("signatures", {}).get(notary, {}):
        known = keys.get_verify_key(notary, name)
        if known is not None:
            try:
                verify_json(response, notary, known.verify_key)
            except InvalidSignature as exc:
                raise InvalidKeyResponse(f"Bad signature by the notary {notary}") from exc
            return
    raise InvalidKeyResponse(f"Not signed by the notary {notary}")


class KeyRing:
    """``ServerKeys`` over our own key and the database, fetching what it lacks."""

    def __init__(self, fetchers: Iterable[KeyFetcher] | None = None) -> None:
        self.fetchers = (
            tuple(fetchers) if fetchers is not None else (fetch_from_origin, fetch_from_notaries)
        )

    def get_verify_key(self, server_name: str, key_id_: str) -> ServerVerifyKey | None:
        """See ``matrixhs.protocol.signing.ServerKeys.get_verify_key``."""
        if server_name == settings.MATRIXHS_SERVER_NAME:
            key = get_signing_key()
            if key_id(key) == key_id_:
                return ServerVerifyKey(verify_key_of(key))
            return self._stored(server_name, key_id_)
        found = self._stored(server_name, key_id_)
        current = found is not None and (
            found.valid_until_ts is None or found.valid_until_ts > now_ms() or self._is_old(found)
        )
        if not current and self._may_fetch(server_name):
            self._fetch(server_name)
            found = self._stored(server_name, key_id_)
        return found

    @staticmethod
    def _stored(server_name: str, key_id_: str) -> ServerVerifyKey | None:
        row = ServerKey.objects.filter(server_name=server_name, key_id=key_id_).first()
        if row is None:
            return None
        try:
            verify_key = decode_verify_key(key_id_, row.verify_key)
        except (InvalidSignature, ValueError):
            return None
        return _StoredKey(verify_key, row.valid_until_ts, row.expired_ts is not None)

    @staticmethod
    def _is_old(key: ServerVerifyKey) -> bool:
        # An old key's validity ended for good: fetching again would not extend it.
        return isinstance(key, _StoredKey) and key.old

    @staticmethod
    def _may_fetch(server_name: str) -> bool:
        interval = settings.MATRIXHS_FEDERATION_KEY_REFETCH_S
        return bool(cache.add(f"federation.keys.fetched:{server_name}", 1, timeout=interval))

    def _fetch(self, server_name: str) -> None:
        for fetch in self.fetchers:
            try:
                fetch(server_name)
                return
            except Exception as exc:  # the next source
                logger.info("Fetching the keys of %s failed: %s", server_name, exc)


@dataclasses.dataclass(frozen=True)
class _StoredKey(ServerVerifyKey):
    #: An old key (from old_verify_keys, or ours before a rotation).
    old: bool = False


def server_keys() -> ServerKeys:
    """The key store for signature checks on events (auth rule 4.2) and requests."""
    return KeyRing()


# --- Notary -------------------------------------------------------------------------------


def notary_responses(criteria: dict[str, tuple[set[str], int]]) -> list[JsonDict]:
    """POST and GET /_matrix/key/v2/query: each server's key response countersigned by us.

    ``criteria``: server name -> (the key IDs wanted, possibly none; the validity wanted,
    ms, 0 for now). A server whose cached response does not satisfy them is asked again;
    one that cannot be reached and has nothing cached is left out.
    """
    answers = []
    for server_name, (key_ids, minimum) in criteria.items():
        response = _response_for(server_name, key_ids, max(minimum, now_ms()))
        if response is not None:
            answers.append(sign_json(response, settings.MATRIXHS_SERVER_NAME, get_signing_key()))
    return answers


def _response_for(server_name: str, key_ids: set[str], minimum: int) -> JsonDict | None:
    if server_name == settings.MATRIXHS_SERVER_NAME:
        return own_keys_response()
    cached = _cached_response(server_name)
    if cached is None or not _satisfies(cached, key_ids, minimum):
        try:
            fetch_from_origin(server_name)
        except Exception as exc:
            logger.info("Notary: fetching the keys of %s failed: %s", server_name, exc)
        cached = _cached_response(server_name) or cached
    return cached


def _cached_response(server_name: str) -> JsonDict | None:
    row = ServerKeysResponse.objects.filter(server_name=server_name).first()
    return json.loads(row.response) if row is not None else None


def _satisfies(response: JsonDict, key_ids: set[str], minimum: int) -> bool:
    known = {**(response.get("old_verify_keys") or {}), **response["verify_keys"]}
    return bool(response["valid_until_ts"] >= minimum) and key_ids <= known.keys()
