"""Stored filters (POST /user/{userId}/filter) and /sync's ``filter`` parameter.

Parsing and matching are matrixhs.filters; this module stores a user's filters.
"""

from __future__ import annotations

import hashlib
import json

from django.db import transaction

from accounts.models import User
from matrixhs.errors import InvalidParam, JsonDict, NotFound, NotJson
from matrixhs.filters import Filter
from matrixhs.http import loads_strict
from matrixhs.time import now_ms
from sync.models import Filter as StoredFilter


def _definition_hash(definition: JsonDict) -> str:
    encoded = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def do_create_filter(user: User, definition: JsonDict) -> str:
    """Store a filter (checked with ``Filter.parse`` first) and return its ID; the same
    definition uploaded again returns the ID it already has."""
    digest = _definition_hash(definition)
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()
        existing = (
            StoredFilter.objects.filter(user=user, definition_hash=digest)
            .values_list("filter_id", flat=True)
            .first()
        )
        if existing is not None:
            return existing
        filter_id = str(StoredFilter.objects.filter(user=user).count())
        StoredFilter.objects.create(
            user=user,
            filter_id=filter_id,
            definition=definition,
            definition_hash=digest,
            created_ts=now_ms(),
        )
    return filter_id


def get_filter_definition(user: User, filter_id: str) -> JsonDict:
    """Raises: NotFound: the user has no filter with this ID."""
    row = (
        StoredFilter.objects.filter(user=user, filter_id=filter_id)
        .values_list("definition", flat=True)
        .first()
    )
    if row is None:
        raise NotFound("No such filter")
    return dict(row)


def load_filter(user: User, filter_param: str | None) -> Filter:
    """/sync's ``filter`` parameter: absent (the default filter), inline JSON (it starts
    with "{"), or the ID of one of the user's stored filters.

    Raises:
        NotJson: inline JSON that is not JSON.
        BadJson: not a valid filter.
        InvalidParam: no stored filter with this ID (400 M_INVALID_PARAM, as Synapse).
    """
    if not filter_param:
        return Filter()
    if filter_param.startswith("{"):
        try:
            data = loads_strict(filter_param)
        except ValueError as exc:
            raise NotJson("The filter is not valid JSON") from exc
        return Filter.parse(data)
    try:
        return Filter.parse(get_filter_definition(user, filter_param))
    except NotFound as exc:
        raise InvalidParam(f"No such filter: {filter_param}") from exc
