"""`manage.py verify_events`: re-check every stored event (hashes, signature, ID, auth)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rooms.queries.integrity import verify_events


class Command(BaseCommand):
    help = "Re-verify every stored event; exits non-zero if any is wrong."

    def handle(self, *args: Any, **options: Any) -> None:
        problems = list(verify_events())
        for problem in problems:
            self.stdout.write(f"{problem.event_id}: {problem.reason}")
        if problems:
            raise CommandError(f"{len(problems)} event(s) failed verification")
        self.stdout.write("All events verify.")
