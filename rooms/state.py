"""State groups: reading the state at an event, and writing new states as deltas.

A group holds the full state (no ``prev_group``) or the entries that differ from its
``prev_group``. Reading walks the chain with one recursive query; writing makes a
delta unless the chain is already ``MAX_DELTA_CHAIN`` long, then a full snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.db import connection

from matrixhs.protocol.events import StateKey
from rooms.models import Room, StateGroup, StateGroupEntry

StateMap = dict[StateKey, str]

#: Longest chain of deltas before a full snapshot is written.
MAX_DELTA_CHAIN = 64

_GROUPS = StateGroup._meta.db_table
_ENTRIES = StateGroupEntry._meta.db_table


def _key_filter(keys: Iterable[StateKey] | None) -> tuple[str, list[str]]:
    if keys is None:
        return "", []
    keys = list(keys)
    if not keys:
        return " AND 1 = 0", []
    clause = " OR ".join("(e.type = %s AND e.state_key = %s)" for _ in keys)
    return f" AND ({clause})", [part for key in keys for part in key]


def states_of_groups(
    group_ids: Iterable[int], keys: Iterable[StateKey] | None = None
) -> dict[int, StateMap]:
    """The state of each group (restricted to ``keys`` when given): one query."""
    roots = sorted(set(group_ids))
    if not roots:
        return {}
    where, params = _key_filter(keys)
    placeholders = ", ".join(["%s"] * len(roots))
    sql = f"""
        WITH RECURSIVE chain(root, id, prev_id, dist) AS (
            SELECT id, id, prev_group_id, 0 FROM {_GROUPS} WHERE id IN ({placeholders})
            UNION ALL
            SELECT c.root, g.id, g.prev_group_id, c.dist + 1
            FROM {_GROUPS} g JOIN chain c ON g.id = c.prev_id
        )
        SELECT c.root, e.type, e.state_key, e.event_id
        FROM chain c JOIN {_ENTRIES} e ON e.group_id = c.id
        WHERE 1 = 1{where}
        ORDER BY c.root, c.dist DESC
    """
    states: dict[int, StateMap] = {root: {} for root in roots}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*roots, *params])
        for root, event_type, state_key, event_id in cursor.fetchall():
            states[root][(event_type, state_key)] = event_id  # nearer deltas come last
    return states


def state_of_group(group_id: int | None, keys: Iterable[StateKey] | None = None) -> StateMap:
    if group_id is None:
        return {}
    return states_of_groups([group_id], keys)[group_id]


def new_state_group(
    room: Room, prev: StateGroup | None, delta: Mapping[StateKey, str]
) -> StateGroup:
    """A group for ``prev``'s state updated with ``delta``."""
    if prev is not None and prev.chain_length < MAX_DELTA_CHAIN:
        group = StateGroup.objects.create(
            room=room, prev_group=prev, chain_length=prev.chain_length + 1
        )
        entries: Mapping[StateKey, str] = delta
    else:
        group = StateGroup.objects.create(room=room)
        entries = {**(state_of_group(prev.pk) if prev is not None else {}), **delta}
    StateGroupEntry.objects.bulk_create(
        StateGroupEntry(group=group, type=key[0], state_key=key[1], event_id=event_id)
        for key, event_id in entries.items()
    )
    return group
