"""Canonical JSON (spec appendix "Canonical JSON") and strict JSON parsing.

Encoding goes through the ``canonicaljson`` package (sorted keys, no whitespace, UTF-8, no
``\\u`` escapes for non-ASCII). On top of it we enforce the value rules the package leaves
out: numbers must be integers in ``[-(2**53)+1, (2**53)-1]``; floats are not allowed.

Room versions 1 to 5 did not enforce these rules, so events from those rooms may hold
floats or large integers; hashing such events uses ``strict=False``.
"""

from __future__ import annotations

import json
from typing import Any

import canonicaljson

#: Largest integer canonical JSON can carry (and smallest, negated).
MAX_SAFE_INTEGER = 2**53 - 1


class InvalidJson(ValueError):
    """The bytes are not acceptable JSON (syntax, encoding, NaN/Infinity, duplicate keys)."""


class InvalidCanonicalJson(ValueError):
    """A value cannot be encoded as canonical JSON (float, integer out of range, bad type)."""


def check_canonical_json(value: object) -> None:
    """Check that ``value`` only holds what canonical JSON can carry.

    Raises:
        InvalidCanonicalJson: a float, an integer outside the safe range, a non-string
            object key or a value that is not a JSON type.
    """
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if item is None or isinstance(item, (str, bool)):
            continue
        if isinstance(item, int):
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                raise InvalidCanonicalJson(f"integer {item} is out of the canonical range")
        elif isinstance(item, float):
            raise InvalidCanonicalJson(f"float {item!r} is not allowed in canonical JSON")
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise InvalidCanonicalJson(f"object key {key!r} is not a string")
                stack.append(child)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        else:
            raise InvalidCanonicalJson(f"{type(item).__name__} is not a JSON type")


def encode_canonical_json(value: object, *, strict: bool = True) -> bytes:
    """Encode ``value`` as canonical JSON bytes.

    Args:
        value: a JSON-compatible value (dicts, lists, str, int, bool, None).
        strict: enforce the canonical number rules. Only pass ``False`` for events of room
            versions that do not enforce canonical JSON (``RoomVersion.strict_canonical_json``).

    Raises:
        InvalidCanonicalJson: the value cannot be encoded (see ``check_canonical_json``), or a
            string holds a lone surrogate, or (non-strict) it holds NaN/Infinity.
    """
    if strict:
        check_canonical_json(value)
    try:
        return canonicaljson.encode_canonical_json(value)
    except (UnicodeEncodeError, TypeError, ValueError) as exc:
        raise InvalidCanonicalJson(str(exc)) from exc


def _reject_constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not valid JSON")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidJson(f"duplicate key {key!r}")
            seen.add(key)
    return result


def parse_json(data: str | bytes) -> Any:
    """Parse JSON text strictly.

    Bytes must be UTF-8. ``NaN``, ``Infinity`` and ``-Infinity`` are rejected, and so are
    objects with duplicate keys. Floats are returned as floats: whether they are allowed
    is for the caller (``check_canonical_json``) to decide.

    Raises:
        InvalidJson: the input is not acceptable JSON.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_reject_duplicates
        )
    except InvalidJson:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidJson(str(exc)) from exc
