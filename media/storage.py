"""The media storage (``STORAGES["media"]``): keys, streaming writes and reads.

Writes go through the storage's own ``save`` (django-storages streams a multipart upload
to S3; FileSystemStorage writes chunk by chunk). Reads stream too: S3's own
``S3File`` would first download the whole object, so reads of S3 objects take the
object's body stream instead.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any, Protocol

from asgiref.sync import sync_to_async
from django.core.files.storage import Storage, storages

from matrixhs.errors import NotFound, TooLarge

CHUNK_SIZE = 1024 * 1024
logger = logging.getLogger(__name__)


def media_storage() -> Storage:
    return storages["media"]


def _is_s3(storage: Storage) -> bool:
    return type(storage).__module__.startswith("storages.backends.s3")


def new_key(kind: str, server_name: str, media_id: str, suffix: str = "") -> str:
    """A key no other object has: each write goes to a new key, so two racing writers
    never overwrite each other's object (the database decides which one is kept)."""
    return f"{kind}/{server_name}/{media_id[:2]}/{media_id[2:]}/{secrets.token_hex(8)}{suffix}"


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class CountingReader:
    """A non-seekable file over a request body (or any stream) that counts, hashes and
    refuses more than ``limit`` bytes while the storage reads it."""

    def __init__(self, source: Readable, limit: int, name: str = "upload") -> None:
        self.source = source
        self.limit = limit
        self.name = name
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.head = b""  # the first bytes, for sniffing the format

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(CHUNK_SIZE if size is None or size < 0 else size)
        self.size += len(data)
        if self.size > self.limit:
            raise TooLarge(f"Cannot upload files larger than {self.limit} bytes")
        self.sha256.update(data)
        if len(self.head) < 64:
            self.head += data[: 64 - len(self.head)]
        return data

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        while data := self.read(chunk_size or CHUNK_SIZE):
            yield data

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        pass

    @property
    def closed(self) -> bool:
        return False


def save(key: str, content: Any) -> str:
    """Write ``content`` (a file or a CountingReader) at ``key``; the key stored.

    On failure nothing is left at the key.
    """
    storage = media_storage()
    try:
        return storage.save(key, content)
    except BaseException:
        delete(key)
        raise


def delete(key: str) -> None:
    if key:
        media_storage().delete(key)


def open_stream(key: str) -> IO[bytes]:
    """A file-like ``read(n)``/``close()`` over the object, read as it streams.

    Raises:
        NotFound: the object is missing from the storage (logged: rows and objects
            should never disagree).
    """
    storage = media_storage()
    try:
        if _is_s3(storage):
            from botocore.exceptions import ClientError

            name = storage._normalize_name(key)
            try:
                return storage.bucket.Object(name).get()["Body"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    raise FileNotFoundError(key) from exc
                raise
        return storage.open(key, "rb")
    except FileNotFoundError as exc:
        logger.error("Media object %s is missing from the storage", key)
        raise NotFound("Media content is missing") from exc


def open_seekable(key: str) -> IO[bytes]:
    """A seekable file of the object (Pillow needs one): the file itself on disk, a
    spooled temporary copy from S3."""
    storage = media_storage()
    if not _is_s3(storage):
        return open_stream(key)  # a local file: seekable
    copy = tempfile.SpooledTemporaryFile(max_size=CHUNK_SIZE)
    body = open_stream(key)
    try:
        shutil.copyfileobj(body, copy, CHUNK_SIZE)
    finally:
        body.close()
    copy.seek(0)
    return copy


async def aiter_file(stream: IO[bytes]) -> AsyncIterator[bytes]:
    """The stream's bytes for an ASGI response: each read runs on a worker thread and
    the event loop sends the chunk before the next read (Django would otherwise read a
    synchronous iterator whole into memory before sending anything)."""
    read = sync_to_async(stream.read, thread_sensitive=False)
    try:
        while chunk := await read(CHUNK_SIZE):
            yield chunk
    finally:
        await sync_to_async(stream.close, thread_sensitive=False)()
