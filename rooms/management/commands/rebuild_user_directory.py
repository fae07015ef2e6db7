"""`manage.py rebuild_user_directory`: recompute the user directory from the rooms' state."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from rooms.actions.user_directory import rebuild


class Command(BaseCommand):
    help = "Recompute the user directory (who is in an open room, names, search words)."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            count = rebuild()
        self.stdout.write(f"{count} user(s) in the directory.")
