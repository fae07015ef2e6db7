"""`manage.py quarantine_media --media MXC | --user USER_ID | --room ROOM_ID [--undo]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from media.actions import do_quarantine_media, do_unquarantine_media
from media.management.commands._select import add_selection_arguments, selected_media


class Command(BaseCommand):
    help = "Quarantine media: kept in storage, served to nobody (--undo lifts it)."

    def add_arguments(self, parser: Any) -> None:
        add_selection_arguments(parser)
        parser.add_argument("--undo", action="store_true", help="lift the quarantine")
        parser.add_argument("--by", default="admin", help="who quarantines (recorded)")

    def handle(self, *args: Any, **options: Any) -> None:
        media = selected_media(options)
        if options["undo"]:
            count = do_unquarantine_media(media)
            self.stdout.write(f"Lifted the quarantine of {count} media")
        else:
            count = do_quarantine_media(media, by=options["by"])
            self.stdout.write(f"Quarantined {count} media")
