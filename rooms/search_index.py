"""The full-text index of room events, and the one query interface over its two backends.

What is indexed (``searchable``): the text of ``content.body`` of m.room.message,
``content.name`` of m.room.name and ``content.topic`` of m.room.topic, as rows of
``EventSearch`` that rooms/events.py writes with the event. Nothing else: encrypted events
(m.room.encrypted) never are, so their plaintext never reaches the index.

The matching is the database's own:

- PostgreSQL: a generated ``tsvector`` column (``to_tsvector('english', value)``) with a
  GIN index; the search term goes through ``websearch_to_tsquery`` (words, "quoted
  phrases", ``or``, ``-word``) and results are ranked by ``ts_rank``.
- SQLite: an FTS5 table (porter stemming over unicode61) that triggers keep in step with
  ``EventSearch``; the search term is turned into an FTS5 query of the same grammar
  (every word quoted, so nothing in it is FTS5 syntax) and ranked by ``bm25``.

Both rank "higher is closer". PostgreSQL's rank depends on the event and the query
only; bm25 also depends on the whole index, so on SQLite the rank of an event can move a
little as other events are indexed (a page boundary then may repeat or skip an event of
equal standing; the stream bound of the first page keeps later events out).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import connection

from matrixhs.errors import JsonDict
from matrixhs.protocol.events import EventTypes

#: The searched key of each indexed event type.
SEARCH_KEYS = {
    "m.room.message": "content.body",
    EventTypes.NAME: "content.name",
    EventTypes.TOPIC: "content.topic",
}
ALL_KEYS = tuple(SEARCH_KEYS.values())

#: Text beyond this many characters is not indexed (an event is at most 64 KiB anyway;
#: PostgreSQL refuses tsvectors over 1 MiB).
MAX_INDEXED_CHARS = 65_536

SEARCH_TABLE = "rooms_eventsearch"
FTS_TABLE = "rooms_eventsearch_fts"
TS_CONFIG = "english"


def searchable(event_type: str, state_key: str | None, content: Any) -> tuple[str, str] | None:
    """The (key, text) an event is indexed under, or None: not a searchable event."""
    key = SEARCH_KEYS.get(event_type)
    if key is None or not isinstance(content, dict):
        return None
    if (event_type == "m.room.message") != (state_key is None):
        return None  # a message is no state; a name or topic is
    value = content.get(key.removeprefix("content."))
    if not isinstance(value, str) or not value.strip():
        return None
    return key, value[:MAX_INDEXED_CHARS].replace("\x00", "")


def searchable_pdu(pdu: JsonDict) -> tuple[str, str] | None:
    state_key = pdu.get("state_key")
    return searchable(
        str(pdu.get("type")), state_key if isinstance(state_key, str) else None, pdu.get("content")
    )


# --- The search term ------------------------------------------------------------------

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Term:
    """A search term read as the web-search grammar both backends share: clauses that must
    all match (each a choice of phrases joined by ``or``) and phrases that must not."""

    raw: str
    clauses: tuple[tuple[tuple[str, ...], ...], ...]
    excluded: tuple[tuple[str, ...], ...]

    @property
    def highlights(self) -> list[str]:
        """The words to highlight in results: those of the phrases that must match."""
        words = dict.fromkeys(w for c in self.clauses for p in c for w in p)
        return list(words)


def parse_term(raw: str) -> Term:
    clauses: list[list[tuple[str, ...]]] = []
    excluded: list[tuple[str, ...]] = []
    join_next = False
    for match in _TOKEN.finditer(raw):
        negated = bool(match.group(1)) or (match.group(3) or "").startswith("-")
        text = match.group(2) if match.group(2) is not None else match.group(3)
        if match.group(3) is not None and match.group(3).lower() == "or":
            join_next = bool(clauses)
            continue
        phrase = tuple(w.lower() for w in _WORD.findall(text))
        if not phrase:
            continue
        if negated:
            excluded.append(phrase)
        elif join_next:
            clauses[-1].append(phrase)
        else:
            clauses.append([phrase])
        join_next = False
    return Term(raw, tuple(tuple(c) for c in clauses), tuple(excluded))


def _fts5_phrase(phrase: tuple[str, ...]) -> str:
    return '"' + " ".join(phrase).replace('"', '""') + '"'


def fts5_query(term: Term) -> str | None:
    """The FTS5 query of a term (None: it can match nothing, e.g. only exclusions)."""
    if not term.clauses:
        return None
    parts = []
    for clause in term.clauses:
        alternatives = " OR ".join(_fts5_phrase(p) for p in clause)
        parts.append(f"({alternatives})" if len(clause) > 1 else alternatives)
    query = " AND ".join(parts)
    if term.excluded:
        query = f"({query}) NOT ({' OR '.join(_fts5_phrase(p) for p in term.excluded)})"
    return query


# --- The backends ---------------------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """Conditions on ``s`` (the EventSearch row) and, when ``needs_event``, on the
    ``rooms_event`` row of the same event."""

    sql: str
    params: list[Any]
    needs_event: bool = False


@dataclass(frozen=True)
class After:
    """Keyset position: results strictly after (rank, stream) in the chosen order."""

    rank: float
    stream: int


class SearchBackend:
    """One backend's SQL. ``candidates`` and ``count`` take the same ``Where``."""

    def match(self, term: Term) -> tuple[str, str, str, list[Any]] | None:
        """(FROM part, match condition, rank expression, params of the FROM part)."""
        raise NotImplementedError

    def match_params(self, term: Term) -> list[Any]:
        return []

    def _from(self, term: Term, where: Where) -> tuple[str, str, str, list[Any]] | None:
        found = self.match(term)
        if found is None:
            return None
        from_sql, condition, rank, params = found
        if where.needs_event:
            from_sql += " JOIN rooms_event ON rooms_event.id = s.event_id"
        condition = f"{condition} AND {where.sql}" if where.sql else condition
        return from_sql, condition, rank, [*params, *self.match_params(term), *where.params]

    def candidates(
        self, term: Term, where: Where, by_rank: bool, after: After | None, limit: int
    ) -> list[tuple[int, float, int]]:
        """(event pk, rank, stream position) of matching events, best (or newest) first."""
        found = self._from(term, where)
        if found is None:
            return []
        from_sql, condition, rank, params = found
        if after is not None and by_rank:
            # A row value: the rank is worked out once more per match, not twice.
            condition += f" AND ({rank}, s.stream_ordering) < (%s, %s)"
            params += [after.rank, after.stream]
        elif after is not None:
            condition += " AND s.stream_ordering < %s"
            params.append(after.stream)
        order = "rank DESC, s.stream_ordering DESC" if by_rank else "s.stream_ordering DESC"
        sql = (
            f"SELECT s.event_id, {rank} AS rank, s.stream_ordering FROM {from_sql} "
            f"WHERE {condition} ORDER BY {order} LIMIT %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, limit])
            return [(pk, float(r), stream) for pk, r, stream in cursor.fetchall()]

    def count(self, term: Term, where: Where) -> int:
        found = self._from(term, where)
        if found is None:
            return 0
        from_sql, condition, _, params = found
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {from_sql} WHERE {condition}", params)
            return int(cursor.fetchone()[0])


class PostgresSearch(SearchBackend):
    def match(self, term: Term) -> tuple[str, str, str, list[Any]] | None:
        if not term.clauses:
            return None
        return (
            f"{SEARCH_TABLE} s CROSS JOIN websearch_to_tsquery(%s::regconfig, %s) AS q",
            "s.vector @@ q",
            "ts_rank(s.vector, q)::float8",
            [TS_CONFIG, term.raw],
        )


class SqliteSearch(SearchBackend):
    def match(self, term: Term) -> tuple[str, str, str, list[Any]] | None:
        if fts5_query(term) is None:
            return None
        return (
            f"{FTS_TABLE} JOIN {SEARCH_TABLE} s ON s.event_id = {FTS_TABLE}.rowid",
            f"{FTS_TABLE} MATCH %s",
            f"(-bm25({FTS_TABLE}))",
            [],
        )

    def match_params(self, term: Term) -> list[Any]:
        return [fts5_query(term)]


def search_backend() -> SearchBackend:
    return PostgresSearch() if connection.vendor == "postgresql" else SqliteSearch()


# --- Schema (migration 0006) ------------------------------------------------------------

POSTGRES_SCHEMA = [
    f"ALTER TABLE {SEARCH_TABLE} ADD COLUMN vector tsvector "
    f"GENERATED ALWAYS AS (to_tsvector('{TS_CONFIG}'::regconfig, value)) STORED",
    f"CREATE INDEX event_search_vector ON {SEARCH_TABLE} USING GIN (vector)",
]
POSTGRES_SCHEMA_REVERSE = [
    "DROP INDEX IF EXISTS event_search_vector",
    f"ALTER TABLE {SEARCH_TABLE} DROP COLUMN IF EXISTS vector",
]
SQLITE_SCHEMA = [
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(value, content='{SEARCH_TABLE}', "
    "content_rowid='event_id', tokenize='porter unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER {SEARCH_TABLE}_ai AFTER INSERT ON {SEARCH_TABLE} BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, value) VALUES (new.event_id, new.value); END",
    f"CREATE TRIGGER {SEARCH_TABLE}_ad AFTER DELETE ON {SEARCH_TABLE} BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, value) "
    "VALUES ('delete', old.event_id, old.value); END",
    f"CREATE TRIGGER {SEARCH_TABLE}_au AFTER UPDATE ON {SEARCH_TABLE} BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, value) "
    "VALUES ('delete', old.event_id, old.value); "
    f"INSERT INTO {FTS_TABLE}(rowid, value) VALUES (new.event_id, new.value); END",
]
SQLITE_SCHEMA_REVERSE = [
    f"DROP TRIGGER IF EXISTS {SEARCH_TABLE}_au",
    f"DROP TRIGGER IF EXISTS {SEARCH_TABLE}_ad",
    f"DROP TRIGGER IF EXISTS {SEARCH_TABLE}_ai",
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
]
