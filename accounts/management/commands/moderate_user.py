"""`manage.py moderate_user @alice:example.org --lock|--unlock|--suspend|--unsuspend`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.actions.users import do_set_locked, do_set_suspended
from accounts.queries import get_local_user

CHANGES = {
    "lock": (do_set_locked, True, "Locked"),
    "unlock": (do_set_locked, False, "Unlocked"),
    "suspend": (do_set_suspended, True, "Suspended"),
    "unsuspend": (do_set_suspended, False, "Reinstated"),
}


class Command(BaseCommand):
    help = (
        "Lock an account (every request but logout refused) or suspend it (read-only), "
        "or lift either."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("user_id", help="the full user ID, e.g. @alice:example.org")
        group = parser.add_mutually_exclusive_group(required=True)
        for name in CHANGES:
            group.add_argument(f"--{name}", action="store_const", const=name, dest="change")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_local_user(options["user_id"])
        if user is None:
            raise CommandError(f"No local user {options['user_id']}")
        action, value, done = CHANGES[options["change"]]
        action(user, value)
        self.stdout.write(f"{done} {user.user_id}")
