"""`manage.py purge_media`: retention. Deletes media not accessed for N days."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from matrixhs.time import now_ms
from media.actions import do_delete_media
from media.management.progress import ProgressBar
from media.queries import media_not_accessed_since

DAY_MS = 24 * 3600 * 1000


class Command(BaseCommand):
    help = (
        "Delete media (and their thumbnails) not accessed for N days, and created media "
        "IDs that expired without an upload. Defaults: MATRIXHS_MEDIA_RETENTION_LOCAL_DAYS "
        "and MATRIXHS_MEDIA_RETENTION_REMOTE_DAYS (0 keeps that kind for ever)."
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
        now = now_ms()
        total = 0
        for kind, days in (("local", local_days), ("remote", remote_days)):
            media = media_not_accessed_since(
                now - days * DAY_MS,
                local=kind == "local" and days > 0,
                remote=kind == "remote" and days > 0,
            )
            if kind == "remote":  # expired pending IDs were counted with the local pass
                media = media.exclude(uploaded_ts__isnull=True)
            count = media.count()
            if options["dry_run"]:
                self.stdout.write(f"Would delete {count} {kind} media")
                continue
            bar = ProgressBar(self.stdout, count, f"Purging {kind} media")
            total += do_delete_media(media.iterator(), progress=bar.advance)
        if not options["dry_run"]:
            self.stdout.write(f"Deleted {total} media")
