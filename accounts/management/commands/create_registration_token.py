"""`manage.py create_registration_token [--token T] [--uses N] [--expires-in-days D]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.actions.registration_tokens import do_create_registration_token
from matrixhs.errors import MatrixError
from matrixhs.time import now_ms


class Command(BaseCommand):
    help = "Create a registration token (used when MATRIXHS_REGISTRATION=token)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--token", help="the token (default: random)")
        parser.add_argument("--uses", type=int, help="how many registrations it allows")
        parser.add_argument("--expires-in-days", type=float, help="validity period")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["expires_in_days"]
        expiry = now_ms() + int(days * 86_400_000) if days is not None else None
        try:
            token = do_create_registration_token(options["token"], options["uses"], expiry)
        except MatrixError as exc:
            raise CommandError(exc.msg) from exc
        self.stdout.write(token.token)
