"""`manage.py list_users`: the local users, one per line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from accounts.models import User


class Command(BaseCommand):
    help = "List local users (user ID, flags, display name)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--all", action="store_true", help="include deactivated users")

    def handle(self, *args: Any, **options: Any) -> None:
        users = User.objects.order_by("localpart")
        if not options["all"]:
            users = users.filter(is_active=True)
        for user in users:
            flags = [
                name
                for name, on in (
                    ("admin", user.is_admin),
                    ("guest", user.is_guest),
                    ("deactivated", not user.is_active),
                )
                if on
            ]
            self.stdout.write(f"{user.user_id}\t{','.join(flags) or '-'}\t{user.displayname or ''}")
