"""`manage.py deactivate_user @alice:example.org --for-real`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.actions.users import do_deactivate_user
from accounts.queries import get_local_user


class Command(BaseCommand):
    help = "Deactivate a local user for good: logs out every device; the ID is never reused."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("user_id", help="the full user ID, e.g. @alice:example.org")
        parser.add_argument("--erase", action="store_true", help="also clear the profile")
        parser.add_argument("--for-real", action="store_true", help="required: it is final")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_local_user(options["user_id"])
        if user is None:
            raise CommandError(f"No local user {options['user_id']}")
        if not user.is_active:
            raise CommandError(f"{user.user_id} is already deactivated")
        if not options["for_real"]:
            raise CommandError("Deactivation is final: add --for-real to go ahead.")
        do_deactivate_user(user, erase=options["erase"])
        self.stdout.write(f"Deactivated {user.user_id}")
