"""The user directory (POST /user_directory/search): users the searcher may know of.

As the spec asks at the least: users who share a room with the searcher, and users joined
to rooms with a public join rule or world-readable history; never the searcher. Matching
is case-insensitive on the user ID and the display name.
"""

from __future__ import annotations

from django.db.models import Q

from accounts.models import User
from matrixhs.errors import JsonDict
from matrixhs.protocol.events import EventTypes
from rooms.events import load_pdus
from rooms.models import CurrentStateEvent, RoomMembership

MAX_LIMIT = 50


def _open_rooms() -> list[int]:
    """Rooms with a public join rule or world-readable history (by pk)."""
    rows = list(
        CurrentStateEvent.objects.filter(
            type__in=(EventTypes.JOIN_RULES, EventTypes.HISTORY_VISIBILITY), state_key=""
        ).values_list("room_id", "type", "event_id")
    )
    pdus = load_pdus(event_id for _, _, event_id in rows)
    open_rooms = []
    for room_pk, event_type, event_id in rows:
        content = pdus.get(event_id, {}).get("content", {})
        if (event_type == EventTypes.JOIN_RULES and content.get("join_rule") == "public") or (
            content.get("history_visibility") == "world_readable"
        ):
            open_rooms.append(room_pk)
    return open_rooms


def search_users(searcher: str, term: str, limit: int) -> JsonDict:
    """The body of /user_directory/search."""
    limit = max(0, min(limit, MAX_LIMIT))
    mine = RoomMembership.objects.filter(user_id=searcher, membership="join").values("room_id")
    rows = (
        RoomMembership.objects.filter(membership="join")
        .exclude(user_id=searcher)
        .filter(Q(room_id__in=mine) | Q(room_id__in=_open_rooms()))
        .filter(Q(user_id__icontains=term) | Q(displayname__icontains=term))
        .values_list("user_id", "displayname", "avatar_url")
        .order_by("user_id")
    )
    found: dict[str, JsonDict] = {}
    for user_id, displayname, avatar_url in rows:
        entry = found.setdefault(user_id, {"user_id": user_id})
        if displayname and "display_name" not in entry:
            entry["display_name"] = displayname
        if avatar_url and "avatar_url" not in entry:
            entry["avatar_url"] = avatar_url
    # Local users appear with their profile, not a name they took in one room.
    for user_id, displayname, avatar_url in User.objects.filter(
        user_id__in=list(found), is_active=True
    ).values_list("user_id", "displayname", "avatar_url"):
        profile = {"display_name": displayname, "avatar_url": avatar_url}
        found[user_id] = {"user_id": user_id, **{k: v for k, v in profile.items() if v}}
    needle = term.casefold()

    def rank(entry: JsonDict) -> tuple[int, str]:
        name = str(entry.get("display_name", "")).casefold()
        localpart = entry["user_id"][1:].split(":", 1)[0].casefold()
        exact = needle in (name, localpart)
        prefix = name.startswith(needle) or localpart.startswith(needle)
        return (0 if exact else 1 if prefix else 2, entry["user_id"])

    ordered = sorted(found.values(), key=rank)
    return {"results": ordered[:limit], "limited": len(ordered) > limit}
