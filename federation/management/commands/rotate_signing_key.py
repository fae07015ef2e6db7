"""`manage.py rotate_signing_key`: a new signing key; the old one stays published as an
old key (with its expiry time) so that events signed with it still verify."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from federation.keys import key_id, rotate_signing_key


class Command(BaseCommand):
    help = "Replace the server's signing key; the old key is kept as an old_verify_key."

    def handle(self, *args: Any, **options: Any) -> None:
        old, new = rotate_signing_key()
        self.stdout.write(
            f"New signing key {key_id(new)}; {key_id(old)} kept as an old key. "
            "Restart the server to sign with the new key."
        )
