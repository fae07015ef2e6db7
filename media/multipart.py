"""Reading a federation media answer (``multipart/mixed``: the metadata as JSON, then
the bytes, or a ``Location`` to fetch them from) as it arrives, without holding it.

python-multipart does the parsing; this turns its callbacks into a file-like object the
storage can read from, one network chunk at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from email.message import Message

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError

#: The headers of one part, names in lower case.
Headers = dict[str, str]


class MalformedMultipart(ValueError):
    """Not the two-part answer the spec describes."""


def boundary_of(content_type: str) -> str:
    """Raises: MalformedMultipart: not multipart/mixed with a boundary."""
    message = Message()
    message["content-type"] = content_type
    boundary = message.get_param("boundary")
    if message.get_content_type() != "multipart/mixed" or not isinstance(boundary, str):
        raise MalformedMultipart(f"not multipart/mixed with a boundary: {content_type!r}")
    return boundary


def filename_of(content_disposition: str) -> str | None:
    """The ``filename`` (or RFC 6266 ``filename*``) of a Content-Disposition."""
    if not content_disposition:
        return None
    message = Message()
    message["content-disposition"] = content_disposition
    name = message.get_filename()
    return name if isinstance(name, str) else None


class MediaPart:
    """The second part of the answer: its headers, then its bytes through ``read``."""

    def __init__(self, chunks: Iterator[bytes], boundary: str) -> None:
        self._chunks = chunks
        self._part = 0
        self._field = b""
        self._value = b""
        self._headers: list[Headers] = []
        self._data: list[bytes] = []
        self._ended = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_end": self._end,
            },
        )
        while len(self._headers) < 2 or not self._headers_done:
            if not self._feed():
                raise MalformedMultipart("the answer ended before its media part")
        self.headers = self._headers[1]

    # --- callbacks ------------------------------------------------------------------------

    _headers_done = False

    def _begin(self) -> None:
        self._part += 1
        self._headers.append({})
        self._headers_done = False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        name = self._field.decode("latin-1").strip().lower()
        self._headers[-1][name] = self._value.decode("latin-1").strip()
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        self._headers_done = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part == 2:
            self._data.append(bytes(data[start:end]))

    def _end(self) -> None:
        self._ended = True

    # --- reading --------------------------------------------------------------------------

    def _feed(self) -> bool:
        """Parse the next network chunk; False when there is none."""
        chunk = next(self._chunks, None)
        if chunk is None:
            return False
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise MalformedMultipart(str(exc)) from exc
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._ended and sum(map(len, self._data)) < max(size, 1):
            if not self._feed():
                if not self._ended:
                    raise MalformedMultipart("the answer ended inside its media part")
        data = b"".join(self._data)
        if size < 0 or size >= len(data):
            self._data = []
            return data
        self._data = [data[size:]]
        return data[:size]
