"""Plain SQL for the hottest paths, with rows turned into model instances.

The ORM builds its SQL anew on every call, which costs more than a simple indexed query
itself; the few queries that run on every request (the access token, the user's rooms,
the events since a sync token) are written out once here instead. Values always go
through parameters.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model, signals
from django.db.models.base import ModelState

M = TypeVar("M", bound=Model)


def columns(model: type[Model], alias: str) -> list[str]:
    """``alias.column`` for each concrete field, in the model's field order."""
    return [f"{alias}.{field.column}" for field in model._meta.concrete_fields]


def width(model: type[Model]) -> int:
    return len(model._meta.concrete_fields)


class _Loader:
    """How rows of one model become instances: the fields' attribute names and value
    converters, worked out once per model."""

    __slots__ = ("attnames", "converters", "plain")

    def __init__(self, model: type[Model]) -> None:
        fields = model._meta.concrete_fields
        self.attnames = tuple(field.attname for field in fields)
        self.converters = tuple(getattr(field, "from_db_value", None) for field in fields)
        # Without init signal receivers, the instance is made as Model.from_db would make
        # it, minus __init__'s per-field work (descriptors, defaults, the signals).
        self.plain = not (
            signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model)
        )


_loaders: dict[type[Model], _Loader] = {}


def instance(model: type[M], values: tuple[Any, ...] | list[Any]) -> M:
    """A model instance from a row of :func:`columns` values (as the ORM would load it)."""
    loader = _loaders.get(model)
    if loader is None:
        loader = _loaders[model] = _Loader(model)
    converted = [
        value if convert is None or value is None else convert(value, None, connection)
        for convert, value in zip(loader.converters, values, strict=True)
    ]
    if not loader.plain:
        return model.from_db(connection.alias, list(loader.attnames), converted)  # type: ignore[no-any-return]
    obj: M = Model.__new__(model)
    obj.__dict__.update(zip(loader.attnames, converted, strict=True))
    state = ModelState()
    state.adding = False
    state.db = connection.alias
    obj._state = state
    return obj


def rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
