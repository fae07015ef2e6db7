"""The protocol core: everything that must be bit-exact with other servers.

Nothing in this package imports Django, DRF, Channels or Celery; functions take plain
dicts and dataclasses and return values (a test enforces the import rule).
"""
