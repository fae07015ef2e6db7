"""`manage.py delete_media --media MXC | --user USER_ID | --room ROOM_ID --for-real`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from media.actions import do_delete_media
from media.management.commands._select import add_selection_arguments, selected_media
from media.management.progress import ProgressBar


class Command(BaseCommand):
    help = "Delete media and their thumbnails from the database and the storage."

    def add_arguments(self, parser: Any) -> None:
        add_selection_arguments(parser)
        parser.add_argument("--for-real", action="store_true", help="required: it is final")

    def handle(self, *args: Any, **options: Any) -> None:
        media = selected_media(options)
        count = media.count()
        if not options["for_real"]:
            raise CommandError(f"Would delete {count} media: add --for-real to go ahead.")
        bar = ProgressBar(self.stdout, count, "Deleting media")
        deleted = do_delete_media(media.iterator(), progress=bar.advance)
        self.stdout.write(f"Deleted {deleted} media")
