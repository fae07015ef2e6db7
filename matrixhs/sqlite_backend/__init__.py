"""Django's SQLite backend, with write transactions queued in-process (see base.py)."""
