"""`manage.py purge_media`: retention. Deletes media not accessed for N days."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from matrixhs.time import now_ms
from media.actions import do_delete_media
from media.management.progress import ProgressBar
from media.queries import retention_targets


class Command(BaseCommand):
    help = (
        "Delete media (and their thumbnails) not accessed for N days, and created media "
        "IDs that expired without an upload. Defaults: MATRIXHS_MEDIA_RETENTION_LOCAL_DAYS "
        "and MATRIXHS_MEDIA_RETENTION_REMOTE_DAYS (0 keeps that kind for ever), which the "
        "server also applies every hour."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--local-days", type=int, default=None)
        parser.add_argument("--remote-days", type=int, default=None)
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        local_days = options["local_days"]
        remote_days = options["remote_days"]
        if local_days is None:
            local_days = settings.MATRIXHS_MEDIA_RETENTION_LOCAL_DAYS
        if remote_days is None:
            remote_days = settings.MATRIXHS_MEDIA_RETENTION_REMOTE_DAYS
        total = 0
        for kind, media in retention_targets(local_days, remote_days, now_ms()):
            count = media.count()
            if options["dry_run"]:
                self.stdout.write(f"Would delete {count} {kind} media")
                continue
            bar = ProgressBar(self.stdout, count, f"Purging {kind} media")
            total += do_delete_media(media.iterator(), progress=bar.advance)
        if not options["dry_run"]:
            self.stdout.write(f"Deleted {total} media")
