"""Responses that carry media: streamed from storage, with the spec's safety headers.

Under ASGI, Django reads a synchronous iterator whole into memory before sending
anything; these responses stream an asynchronous one instead (media.storage.aiter_file),
so a 200 MB download holds one chunk at a time.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import IO

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

from media.storage import aiter_file

#: Spec "Serving inline content": the only types served with ``inline``.
SAFE_INLINE_TYPES = frozenset(
    {
        "text/css",
        "text/plain",
        "text/csv",
        "application/json",
        "application/ld+json",
        "image/jpeg",
        "image/gif",
        "image/png",
        "image/apng",
        "image/webp",
        "image/avif",
        "video/mp4",
        "video/webm",
        "video/ogg",
        "video/quicktime",
        "audio/mp4",
        "audio/webm",
        "audio/aac",
        "audio/mpeg",
        "audio/ogg",
        "audio/wave",
        "audio/wav",
        "audio/x-wav",
        "audio/x-pn-wav",
        "audio/flac",
        "audio/x-flac",
    }
)
#: The spec's recommended policy for served content.
CONTENT_SECURITY_POLICY = (
    "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
    "style-src 'unsafe-inline'; object-src 'self';"
)


def is_safe_inline(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() in SAFE_INLINE_TYPES


def disposition(content_type: str, filename: str, force_inline: bool = False) -> str:
    """``inline`` for the safe types (always for thumbnails), else ``attachment``; with
    the file name quoted (or RFC 5987-encoded) by Django."""
    inline = force_inline or is_safe_inline(content_type)
    header = content_disposition_header(not inline, filename) if filename else None
    return header or ("inline" if inline else "attachment")


def media_response(
    stream: IO[bytes], size: int, content_type: str, content_disposition: str
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(aiter_file(stream), content_type=content_type)
    response["Content-Length"] = str(size)
    response["Content-Disposition"] = content_disposition
    _safety_headers(response)
    return response


def _safety_headers(response: StreamingHttpResponse) -> None:
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=86400"


def multipart_response(
    stream: IO[bytes], size: int, content_type: str, content_disposition: str
) -> StreamingHttpResponse:
    """Federation media: multipart/mixed with two parts, the metadata (``{}``) as JSON,
    then the bytes with their own Content-Type and Content-Disposition."""
    boundary = secrets.token_hex(16)
    head = (
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n"
        f"--{boundary}\r\nContent-Type: {content_type}\r\n"
        f"Content-Disposition: {content_disposition}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def parts() -> AsyncIterator[bytes]:
        yield head
        async for chunk in aiter_file(stream):
            yield chunk
        yield tail

    response = StreamingHttpResponse(parts(), content_type=f"multipart/mixed; boundary={boundary}")
    response["Content-Length"] = str(len(head) + size + len(tail))
    _safety_headers(response)
    return response
