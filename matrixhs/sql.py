"""Plain SQL for the hottest paths, with rows turned into model instances.

The ORM builds its SQL anew on every call, which costs more than a simple indexed query
itself; the few queries that run on every request (the access token, the user's rooms,
the events since a sync token) are written out once here instead. Values always go
through parameters.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)


def columns(model: type[Model], alias: str) -> list[str]:
    """``alias.column`` for each concrete field, in the model's field order."""
    return [f"{alias}.{field.column}" for field in model._meta.concrete_fields]


def width(model: type[Model]) -> int:
    return len(model._meta.concrete_fields)


def instance(model: type[M], values: tuple[Any, ...] | list[Any]) -> M:
    """A model instance from a row of :func:`columns` values (as the ORM would load it)."""
    fields = model._meta.concrete_fields
    converted = [
        field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
        for field, value in zip(fields, values, strict=True)
    ]
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
