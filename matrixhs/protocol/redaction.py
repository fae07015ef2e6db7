"""The redaction algorithm (spec room versions, "Redactions").

The same algorithm strips events before they are signed and before their reference hash is
taken, so it must be exact for every room version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matrixhs.protocol.events import EventTypes, JsonDict, content_of, sender_domain
from matrixhs.protocol.power_levels import PowerLevels
from matrixhs.protocol.room_versions import RoomVersion

# Top-level keys kept from room version 11 (v11-redactions).
_KEPT_KEYS = frozenset(
    {
        "event_id",
        "type",
        "room_id",
        "sender",
        "state_key",
        "content",
        "hashes",
        "signatures",
        "depth",
        "prev_events",
        "auth_events",
        "origin_server_ts",
    }
)
# Room versions 1 to 10 also keep these (v1/v6/v9-redactions).
_KEPT_KEYS_BEFORE_V11 = _KEPT_KEYS | {"prev_state", "origin", "membership"}

_POWER_LEVEL_KEYS = (
    "ban",
    "events",
    "events_default",
    "kick",
    "redact",
    "state_default",
    "users",
    "users_default",
)


def redact_event(event: Mapping[str, Any], rv: RoomVersion) -> JsonDict:
    """Return the redacted form of ``event`` for room version ``rv``.

    Keys outside the room version's list are dropped (``unsigned`` included), and
    ``content`` keeps only the keys its event type protects. The input is not modified;
    nested values are shared with it, so copy before mutating them.
    """
    kept_keys = _KEPT_KEYS if rv.updated_redaction_rules else _KEPT_KEYS_BEFORE_V11
    redacted = {key: value for key, value in event.items() if key in kept_keys}
    event_type = event.get("type")
    redacted["content"] = _redacted_content(event_type, content_of(event), rv)
    return redacted


def _redacted_content(event_type: object, content: Mapping[str, Any], rv: RoomVersion) -> JsonDict:
    if event_type == EventTypes.CREATE and rv.updated_redaction_rules:
        return dict(content)  # v11: create events keep all of their content.
    kept: JsonDict = {}

    def keep(*names: str) -> None:
        for name in names:
            if name in content:
                kept[name] = content[name]

    if event_type == EventTypes.MEMBER:
        keep("membership")
        if rv.restricted_join_rule_fix:
            keep("join_authorised_via_users_server")  # v9
        if rv.updated_redaction_rules:
            _keep_signed_third_party_invite(content, kept)  # v11
    elif event_type == EventTypes.CREATE:
        keep("creator")
    elif event_type == EventTypes.JOIN_RULES:
        keep("join_rule")
        if rv.restricted_join_rule:
            keep("allow")  # v8
    elif event_type == EventTypes.POWER_LEVELS:
        keep(*_POWER_LEVEL_KEYS)
        if rv.updated_redaction_rules:
            keep("invite")  # v11
    elif event_type == EventTypes.ALIASES and rv.special_case_aliases_auth:
        keep("aliases")  # v1-v5 only
    elif event_type == EventTypes.HISTORY_VISIBILITY:
        keep("history_visibility")
    elif event_type == EventTypes.REDACTION and rv.updated_redaction_rules:
        keep("redacts")  # v11
    return kept


def _keep_signed_third_party_invite(content: Mapping[str, Any], kept: JsonDict) -> None:
    # v11: "it allows the `signed` key of the `third_party_invite` key". An object without
    # `signed` stays as an empty object (as Synapse does; the hash must agree with it).
    third_party_invite = content.get("third_party_invite")
    if isinstance(third_party_invite, dict):
        kept["third_party_invite"] = {}
        if "signed" in third_party_invite:
            kept["third_party_invite"]["signed"] = third_party_invite["signed"]


def redacted_event_id(redaction: Mapping[str, Any], rv: RoomVersion) -> str | None:
    """The ID of the event an ``m.room.redaction`` redacts: ``content.redacts`` from v11,
    the top-level ``redacts`` before. None for anything else, a *state* event of type
    ``m.room.redaction`` included: only message events redact (a state event of that
    type is sent at ``state_default``, not at the ``redact`` level)."""
    if redaction.get("type") != EventTypes.REDACTION or "state_key" in redaction:
        return None
    source = content_of(redaction) if rv.redacts_in_content else redaction
    redacts = source.get("redacts")
    return redacts if isinstance(redacts, str) else None


def should_apply_redaction(
    redaction: Mapping[str, Any],
    original: Mapping[str, Any],
    levels: PowerLevels,
) -> bool:
    """Whether an accepted redaction is applied to ``original`` (room versions "Handling
    redactions", v3+): its sender has the redact level, or is on the original sender's
    server. ``levels`` are the power levels at the redaction.

    In v1-v2 the auth rules already enforce this (rule 11, by event ID domains).
    """
    sender = redaction.get("sender")
    if isinstance(sender, str) and levels.user_level(sender) >= levels.named_level("redact"):
        return True
    return bool(sender_domain(redaction)) and sender_domain(redaction) == sender_domain(original)
