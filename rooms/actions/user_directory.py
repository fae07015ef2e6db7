"""The user directory's index (searched by rooms/queries/user_directory.py).

Whom a search may find (spec "User directory", at the least): users who share a room with
the searcher, and users joined to rooms with a public join rule or world-readable history.
:class:`UserDirectoryEntry` holds each user joined to some room we know, with the words of
their user ID and display name; ``Room.directory_open`` marks the rooms whose members
everyone finds. rooms/events.py keeps both in step with the rooms' current state, in the
transaction that changes it; a local user's profile change calls :func:`refresh_users`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

from django.conf import settings

from accounts.models import User
from matrixhs.protocol.events import EventTypes
from rooms.models import Room, RoomMembership, UserDirectoryEntry, UserDirectoryWord

_WORD_SPLIT = re.compile(r"[\W_]+")
_CHUNK = 500
MAX_WORD = 64


def words_of(text: str) -> list[str]:
    """The searchable words of a user ID, display name or search term: casefolded, split
    at everything that is not a letter or a digit (``@bob.s:example.org``: bob, s,
    example, org), in order, without repeats."""
    words = [w[:MAX_WORD] for w in _WORD_SPLIT.split(text.casefold()) if w]
    return list(dict.fromkeys(words))


def is_directory_open(join_rules: Any, history_visibility: Any) -> bool:
    """Whether a room's members are found by everyone, from the contents of its
    m.room.join_rules and m.room.history_visibility (None when absent)."""
    join_rule = join_rules.get("join_rule") if isinstance(join_rules, dict) else None
    history = (
        history_visibility.get("history_visibility")
        if isinstance(history_visibility, dict)
        else None
    )
    return join_rule == "public" or history == "world_readable"


def do_set_room_openness(room: Room, is_open: bool) -> None:
    """Record whether the room is open; when that changes, its members' entries follow."""
    # A conditional UPDATE: the room at hand may have been read without this column.
    if (
        not Room.objects.filter(pk=room.pk)
        .exclude(directory_open=is_open)
        .update(directory_open=is_open)
    ):
        return
    room.directory_open = is_open
    members = RoomMembership.objects.filter(room=room, membership="join").values_list(
        "user_id", flat=True
    )
    refresh_users(list(members))


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def refresh_users(user_ids: Collection[str]) -> None:
    """Bring the entries of these users in line with their memberships and profiles: an
    entry for each user joined to a room (local users active, with their profile), none
    for the others. A fixed number of queries per 500 users."""
    for chunk in _chunks(sorted(set(user_ids))):
        _refresh_chunk(chunk)


def _refresh_chunk(user_ids: list[str]) -> None:
    suffix = f":{settings.MATRIXHS_SERVER_NAME}"
    joined: dict[str, tuple[str | None, str | None, bool]] = {}
    newest: dict[str, int] = {}
    rows = RoomMembership.objects.filter(user_id__in=user_ids, membership="join").values_list(
        "user_id", "displayname", "avatar_url", "stream_ordering", "room__directory_open"
    )
    for user_id, name, avatar, position, is_open in rows:
        before = joined.get(user_id)
        open_any = is_open or (before is not None and before[2])
        if before is None or (position or 0) > newest[user_id]:
            newest[user_id] = position or 0
            joined[user_id] = (name, avatar, open_any)
        else:
            joined[user_id] = (before[0], before[1], open_any)
    local = [u for u in joined if u.endswith(suffix)]
    profiles = {
        user_id: (name, avatar)
        for user_id, name, avatar in User.objects.filter(
            user_id__in=local, is_active=True
        ).values_list("user_id", "displayname", "avatar_url")
    }
    wanted: dict[str, tuple[str | None, str | None, bool]] = {}
    for user_id, (name, avatar, is_open) in joined.items():
        if user_id.endswith(suffix):
            if user_id not in profiles:
                continue  # deactivated (or not a user here): never found
            name, avatar = profiles[user_id]
        wanted[user_id] = (name, avatar, is_open)
    existing = {e.user_id: e for e in UserDirectoryEntry.objects.filter(user_id__in=user_ids)}
    UserDirectoryEntry.objects.filter(user_id__in=[u for u in existing if u not in wanted]).delete()
    new: list[UserDirectoryEntry] = []
    updated: list[UserDirectoryEntry] = []
    renamed: list[UserDirectoryEntry] = []
    reopened: dict[bool, list[int]] = {True: [], False: []}
    for user_id, (name, avatar, is_open) in wanted.items():
        entry = existing.get(user_id)
        if entry is None:
            entry = UserDirectoryEntry(user_id=user_id)
            new.append(entry)
        elif (entry.display_name, entry.avatar_url, entry.in_open_room) == (name, avatar, is_open):
            continue
        else:
            updated.append(entry)
            if entry.display_name != name:
                renamed.append(entry)
            elif entry.in_open_room != is_open:
                reopened[is_open].append(entry.pk)
        entry.display_name, entry.avatar_url, entry.in_open_room = name, avatar, is_open
        entry.name_key = (name or "").casefold()[:255]
        entry.localpart_key = user_id[1:].split(":", 1)[0].casefold()[:255]
    UserDirectoryEntry.objects.bulk_create(new)
    UserDirectoryEntry.objects.bulk_update(
        updated, ["display_name", "avatar_url", "in_open_room", "name_key", "localpart_key"]
    )
    for is_open, pks in reopened.items():
        if pks:
            UserDirectoryWord.objects.filter(entry_id__in=pks).update(in_open_room=is_open)
    UserDirectoryWord.objects.filter(entry__in=renamed).delete()
    UserDirectoryWord.objects.bulk_create(
        UserDirectoryWord(entry=entry, word=word, in_open_room=entry.in_open_room)
        for entry in [*new, *renamed]
        for word in words_of(f"{entry.user_id} {entry.display_name or ''}")
    )


def rebuild() -> int:
    """Recompute every room's openness and every entry (for a directory that was never
    built, or to repair one); returns the number of entries."""
    from rooms.events import current_state_ids, load_pdus  # (rooms.events imports this)

    keys = [(EventTypes.JOIN_RULES, ""), (EventTypes.HISTORY_VISIBILITY, "")]
    for room in Room.objects.only("pk", "directory_open").iterator():
        state = current_state_ids(room, keys)
        pdus = load_pdus(state.values())
        contents = [pdus.get(state.get(key, ""), {}).get("content") for key in keys]
        is_open = is_directory_open(*contents)
        if room.directory_open != is_open:
            Room.objects.filter(pk=room.pk).update(directory_open=is_open)
    joined = RoomMembership.objects.filter(membership="join")
    UserDirectoryEntry.objects.exclude(user_id__in=joined.values("user_id")).delete()
    refresh_users(set(joined.values_list("user_id", flat=True)))
    return int(UserDirectoryEntry.objects.count())
