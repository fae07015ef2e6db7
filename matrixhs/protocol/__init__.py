"""The protocol core: everything that must be bit-exact with other servers.

Nothing in this package imports Django, DRF, Channels or Celery; functions take plain
dicts and dataclasses and return values (a test enforces the import rule).

Modules: ``canonical_json`` (encoding, strict parsing), ``ids`` (identifier grammars),
``room_versions`` (v1-v12 as data), ``events`` (PDU accessors, size limits), ``redaction``,
``hashing`` (content/reference hashes, event and room IDs), ``signing`` (keys, signed JSON,
signed events, building PDUs), ``power_levels``, ``event_auth`` (authorisation rules) and
``state_res`` (state resolution v2/v2.1).
"""
