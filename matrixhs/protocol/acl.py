"""Server access control lists: ``m.room.server_acl`` (client-server API "Server Access
Control Lists (ACLs) for rooms").

A server name, without its port, is refused when it is an IP literal and the ACL does not
allow those, when it matches a ``deny`` glob, or when it matches no ``allow`` glob. Globs
take ``*`` (any run of characters) and ``?`` (one character), and are matched without
backtracking blow-ups.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

__all__ = ["glob_match", "server_allowed"]


def glob_match(pattern: str, value: str) -> bool:
    """Whether ``value`` matches the glob ``pattern`` (``*`` and ``?``), in at most
    len(pattern) * len(value) steps (the greedy matcher that remembers only the last star)."""
    p = v = 0
    star, resume = -1, 0
    while v < len(value):
        if p < len(pattern) and pattern[p] in ("?", value[v]) and pattern[p] != "*":
            p, v = p + 1, v + 1
        elif p < len(pattern) and pattern[p] == "*":
            star, resume = p, v
            p += 1
        elif star >= 0:
            p, resume = star + 1, resume + 1
            v = resume
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _host(server_name: str) -> str:
    if server_name.startswith("["):
        return server_name[1 : server_name.find("]")] if "]" in server_name else server_name
    return server_name.rsplit(":", 1)[0] if server_name.count(":") == 1 else server_name


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _globs(value: Any) -> list[str]:
    return [g for g in value if isinstance(g, str)] if isinstance(value, list) else []


def server_allowed(acl_content: Mapping[str, Any] | None, server_name: str) -> bool:
    """Whether the room's ACL (the content of its ``m.room.server_acl``, None for none)
    lets ``server_name`` take part."""
    if acl_content is None:
        return True
    host = _host(server_name)
    allow_ip = acl_content.get("allow_ip_literals", True)
    if allow_ip is False and _is_ip_literal(host):
        return False
    if any(glob_match(g, host) for g in _globs(acl_content.get("deny"))):
        return False
    return any(glob_match(g, host) for g in _globs(acl_content.get("allow")))
