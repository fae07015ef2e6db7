"""The user directory (POST /user_directory/search): users the searcher may know of.

As the spec asks at the least: users who share a room with the searcher, and users joined
to rooms with a public join rule or world-readable history; never the searcher. Every word
of the search term must begin a word of the user's ID or display name, case-insensitively
("ali sm" finds "Alice Smith", "test.local" everyone on test.local).

Results come in the order of the word that matched the term's longest word: a user with
that very word first, then the nearest longer words ("ann" before "anna" before "anne"),
then by when the user entered the directory. The index is kept by
rooms/actions/user_directory.py.

A search is two ordered walks, merged: the users everyone finds (one range of the index
on (in_open_room, word, entry): a page of it, however many match), and the users of the
searcher's rooms that are not open (as many as those rooms hold). A single walk over all
matches, checking for each whether it shares a room with the searcher, costs as many
checks as there are matches when few of them may be found (about 130 ms for a two-letter
prefix among 100,000 users on a server without public rooms, against a few).
"""

from __future__ import annotations

from django.db import connection

from matrixhs.errors import JsonDict
from rooms.actions.user_directory import words_of
from rooms.models import Room, RoomMembership, UserDirectoryEntry, UserDirectoryWord

MAX_LIMIT = 50
_WORD = UserDirectoryWord._meta.db_table
_ENTRY = UserDirectoryEntry._meta.db_table
_MEMBERSHIP = RoomMembership._meta.db_table
_ROOM = Room._meta.db_table
#: Past every character: ``word < prefix + _TOP`` bounds the words beginning with prefix.
_TOP = "\U0010ffff"

# The words (from the term's word on, after the page so far) of users everyone finds, and
# of the users of the searcher's other rooms; the nearest of both.
_SEARCH_SQL = f"""
SELECT c.word, c.entry_id, e.user_id, e.display_name, e.avatar_url FROM (
  SELECT * FROM (
    SELECT w.word, w.entry_id FROM {_WORD} w JOIN {_ENTRY} e ON e.id = w.entry_id
    WHERE w.in_open_room = %s AND {{words}} AND e.user_id <> %s {{other_words}}
    ORDER BY w.word, w.entry_id LIMIT %s) everyone
  UNION
  SELECT * FROM (
    SELECT w.word, w.entry_id
    FROM {_MEMBERSHIP} mine
    JOIN {_ROOM} r ON r.id = mine.room_id AND NOT r.directory_open
    JOIN {_MEMBERSHIP} theirs ON theirs.room_id = mine.room_id AND theirs.membership = 'join'
    JOIN {_ENTRY} e ON e.user_id = theirs.user_id
    JOIN {_WORD} w ON w.entry_id = e.id
    WHERE mine.user_id = %s AND mine.membership = 'join' AND {{words}} AND e.user_id <> %s
      {{other_words}}
    ORDER BY w.word, w.entry_id LIMIT %s) mates
) c JOIN {_ENTRY} e ON e.id = c.entry_id
ORDER BY c.word, c.entry_id
LIMIT %s
"""

_WORDS_SQL = "w.word >= %s AND w.word < %s AND (w.word > %s OR (w.word = %s AND w.entry_id > %s))"

_OTHER_WORD_SQL = f"""
      AND EXISTS (SELECT 1 FROM {_WORD} o
                  WHERE o.entry_id = w.entry_id AND o.word >= %s AND o.word < %s)"""


def search_users(searcher: str, term: str, limit: int) -> JsonDict:
    """The body of /user_directory/search: usually one query (another page only when a
    user matched by several words fills the first with repeats)."""
    limit = max(0, min(limit, MAX_LIMIT))
    words = words_of(term)
    if not words or limit == 0:
        return {"results": [], "limited": bool(words)}
    driving = max(words, key=len)
    others = [w for w in words if w != driving]
    sql = _SEARCH_SQL.format(words=_WORDS_SQL, other_words="".join([_OTHER_WORD_SQL] * len(others)))
    other_params = [p for w in others for p in (w, w + _TOP)]
    found: dict[str, JsonDict] = {}
    after: tuple[str, int] = ("", 0)
    while len(found) <= limit:
        page = limit + 1 - len(found)
        word_params = [driving, driving + _TOP, after[0], after[0], after[1]]
        params = [
            True, *word_params, searcher, *other_params, page,
            searcher, *word_params, searcher, *other_params, page,
            page,
        ]  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        for word, entry_id, user_id, display_name, avatar_url in rows:
            after = (word, entry_id)
            if user_id in found:
                continue
            entry: JsonDict = {"user_id": user_id}
            if display_name:
                entry["display_name"] = display_name
            if avatar_url:
                entry["avatar_url"] = avatar_url
            found[user_id] = entry
        if len(rows) < page:
            break
    results = list(found.values())
    return {"results": results[:limit], "limited": len(results) > limit}
