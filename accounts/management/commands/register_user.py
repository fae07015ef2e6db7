"""`manage.py register_user`: create a local user, from flags or by asking."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.actions.users import check_password_acceptable, check_username, do_register_user
from matrixhs.errors import MatrixError


class Command(BaseCommand):
    help = "Create a user. Asks for what is not given on the command line."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("localpart", nargs="?", help="the user name (the part before ':')")
        parser.add_argument("--password", help="the password (asked for when omitted)")
        parser.add_argument("--displayname", help="the display name (default: the user name)")
        parser.add_argument("--admin", action="store_true", help="make the user a server admin")
        parser.add_argument("--no-input", action="store_true", help="never ask; fail instead")

    def handle(self, *args: Any, **options: Any) -> None:
        interactive = not options["no_input"]
        localpart = options["localpart"]
        if not localpart:
            if not interactive:
                raise CommandError("Give the user name (or drop --no-input).")
            localpart = input("User name: ").strip()
        password = options["password"]
        if password is None:
            if not interactive:
                raise CommandError("Give --password (or drop --no-input).")
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The passwords differ.")
        try:
            localpart = check_username(localpart)
            check_password_acceptable(password)
            user = do_register_user(
                localpart, password, admin=options["admin"], displayname=options["displayname"]
            )
        except MatrixError as exc:
            raise CommandError(f"{exc.errcode}: {exc.msg}") from exc
        role = "admin" if user.is_admin else "user"
        self.stdout.write(f"Created {role} {user.user_id}")
