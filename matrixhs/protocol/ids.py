"""Identifier grammars (spec appendix "Identifier Grammar").

Parsing happens once at the boundary: a view turns a path or body string into a
checked identifier with these functions, and everything below trusts it.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NewType

UserId = NewType("UserId", str)
RoomId = NewType("RoomId", str)
EventId = NewType("EventId", str)
RoomAlias = NewType("RoomAlias", str)

#: Identifiers are at most 255 bytes, sigil and server name included.
MAX_ID_BYTES = 255

# Localparts we hand out to new users: a-z, 0-9, . _ = - / +
_LOCALPART_RE = re.compile(r"^[a-z0-9._=\-/+]+$")
# Localparts that may exist already ("historical"): any printable ASCII but ':'.
_HISTORICAL_LOCALPART_RE = re.compile(r"^[!-9;-~]+$")
_DNS_NAME_RE = re.compile(r"^[A-Za-z0-9.\-]{1,255}$")
_PORT_RE = re.compile(r"^[0-9]{1,5}$")


class InvalidIdentifier(ValueError):
    """A string does not follow the grammar of the identifier it claims to be."""


def is_valid_server_name(server_name: str) -> bool:
    """server_name = (IPv4 | "[" IPv6 "]" | dns_name) [ ":" port ]."""
    host, port = _split_host_port(server_name)
    if port is not None and (not _PORT_RE.match(port) or int(port) > 65535):
        return False
    if host.startswith("["):
        if not host.endswith("]"):
            return False
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    return bool(_DNS_NAME_RE.match(host))


def _split_host_port(server_name: str) -> tuple[str, str | None]:
    if server_name.startswith("["):
        end = server_name.find("]")
        if end == -1:
            return server_name, None
        rest = server_name[end + 1 :]
        if rest.startswith(":"):
            return server_name[: end + 1], rest[1:]
        if rest:
            return server_name, "invalid"
        return server_name, None
    host, sep, port = server_name.rpartition(":")
    if not sep:
        return server_name, None
    return host, port


def is_valid_localpart(localpart: str) -> bool:
    """Whether ``localpart`` may be given to a new user (lower case, restricted set)."""
    return bool(_LOCALPART_RE.match(localpart))


def is_historical_localpart(localpart: str) -> bool:
    """Whether ``localpart`` is acceptable in an existing (possibly remote) user ID."""
    return bool(_HISTORICAL_LOCALPART_RE.match(localpart))


def split_id(identifier: str, sigil: str) -> tuple[str, str]:
    """Split ``&localpart:server`` into (localpart, server_name).

    Raises:
        InvalidIdentifier: wrong sigil, no server name, bad server name or too long.
    """
    if not identifier.startswith(sigil):
        raise InvalidIdentifier(f"{identifier!r} does not start with {sigil!r}")
    if len(identifier.encode("utf-8")) > MAX_ID_BYTES:
        raise InvalidIdentifier(f"{identifier!r} is longer than {MAX_ID_BYTES} bytes")
    localpart, sep, server_name = identifier[1:].partition(":")
    if not sep or not is_valid_server_name(server_name):
        raise InvalidIdentifier(f"{identifier!r} has no valid server name")
    return localpart, server_name


def parse_user_id(value: str) -> UserId:
    """Check a user ID (historical localparts allowed: it may come from anywhere).

    Raises:
        InvalidIdentifier: the string is not a user ID.
    """
    localpart, _ = split_id(value, "@")
    if not localpart or not is_historical_localpart(localpart):
        raise InvalidIdentifier(f"{value!r} has an invalid localpart")
    return UserId(value)


def parse_room_id(value: str) -> RoomId:
    """Check a room ID: ``!opaque:server`` or, from room version 12, ``!hash`` alone.

    Raises:
        InvalidIdentifier: the string is not a room ID.
    """
    if not value.startswith("!") or len(value) < 2:
        raise InvalidIdentifier(f"{value!r} is not a room ID")
    if len(value.encode("utf-8")) > MAX_ID_BYTES:
        raise InvalidIdentifier(f"{value!r} is longer than {MAX_ID_BYTES} bytes")
    if ":" in value:
        split_id(value, "!")
    return RoomId(value)


def parse_event_id(value: str) -> EventId:
    """Check an event ID: ``$opaque:server`` (v1, v2) or ``$hash`` (v3 and later).

    Raises:
        InvalidIdentifier: the string is not an event ID.
    """
    if not value.startswith("$") or len(value) < 2:
        raise InvalidIdentifier(f"{value!r} is not an event ID")
    if len(value.encode("utf-8")) > MAX_ID_BYTES:
        raise InvalidIdentifier(f"{value!r} is longer than {MAX_ID_BYTES} bytes")
    return EventId(value)


def parse_room_alias(value: str) -> RoomAlias:
    """Check a room alias ``#localpart:server``.

    Raises:
        InvalidIdentifier: the string is not a room alias.
    """
    localpart, _ = split_id(value, "#")
    if not localpart:
        raise InvalidIdentifier(f"{value!r} has an empty localpart")
    return RoomAlias(value)


def user_id_for(localpart: str, server_name: str) -> UserId:
    """Build the user ID of a local user."""
    return UserId(f"@{localpart}:{server_name}")


def server_name_of(identifier: str) -> str:
    """The server name part of a ``&localpart:server`` identifier."""
    return identifier.partition(":")[2]


# Media IDs: A-Z a-z 0-9 _ - only (spec "Content repository", security considerations:
# the whitelist defeats directory traversal however it is encoded).
_MEDIA_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")


def is_valid_media_id(media_id: str) -> bool:
    return bool(_MEDIA_ID_RE.match(media_id))


def parse_mxc_uri(value: str) -> tuple[str, str]:
    """``mxc://server/media_id`` -> (server name, media ID), both checked."""
    if not value.startswith("mxc://"):
        raise InvalidIdentifier(f"{value!r} is not an mxc:// URI")
    server_name, sep, media_id = value[len("mxc://") :].partition("/")
    if not sep or not is_valid_server_name(server_name) or not is_valid_media_id(media_id):
        raise InvalidIdentifier(f"{value!r} is not a valid mxc:// URI")
    return server_name, media_id
