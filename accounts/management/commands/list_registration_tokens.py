"""`manage.py list_registration_tokens`: token, uses, expiry, validity."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand

from accounts.actions.uia import registration_token_usable
from accounts.models import RegistrationToken


class Command(BaseCommand):
    help = "List registration tokens."

    def handle(self, *args: Any, **options: Any) -> None:
        usable = set(
            RegistrationToken.objects.filter(registration_token_usable()).values_list(
                "pk", flat=True
            )
        )
        self.stdout.write("token\tcompleted/allowed\tpending\texpires\tvalid")
        for token in RegistrationToken.objects.order_by("created_ts"):
            allowed = "unlimited" if token.uses_allowed is None else str(token.uses_allowed)
            expires = (
                datetime.fromtimestamp(token.expiry_ts / 1000, tz=UTC).isoformat()
                if token.expiry_ts is not None
                else "never"
            )
            valid = "yes" if token.pk in usable else "no"
            self.stdout.write(
                f"{token.token}\t{token.completed}/{allowed}\t{token.pending}\t{expires}\t{valid}"
            )
