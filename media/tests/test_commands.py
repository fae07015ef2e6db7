"""manage.py purge_media (retention), quarantine_media and delete_media."""

from __future__ import annotations

import io

from django.core.management import CommandError, call_command
from django.test import override_settings

from matrixhs.testing import MatrixTestCase
from matrixhs.time import now_ms
from media.models import Media, Thumbnail
from media.queries import media_in_room
from media.tests.images import png
from media.tests.test_upload import stored_files
from rooms.models import Event

UPLOAD = "/_matrix/media/v3/upload"
DAY_MS = 24 * 3600 * 1000


class MediaCommandsTest(MatrixTestCase):
    def upload(self, user: object, data: bytes = b"x", content_type: str = "text/plain") -> Media:
        uri = self.api(user).upload(UPLOAD, data, content_type).body["content_uri"]
        return Media.objects.get(media_id=uri.rsplit("/", 1)[1])

    def run_command(self, *args: str) -> str:
        out = io.StringIO()
        call_command(*args, stdout=out)
        return out.getvalue()

    def test_purge_deletes_media_not_accessed_for_n_days(self) -> None:
        before = stored_files()
        old = self.upload(self.alice, png(300, 300), "image/png")
        fresh = self.upload(self.alice)
        Media.objects.filter(pk=old.pk).update(last_access_ts=now_ms() - 31 * DAY_MS)
        output = self.run_command("purge_media", "--local-days", "30")
        self.assertIn("Purging local media [", output)
        self.assertIn("1/1", output)
        self.assertEqual(list(Media.objects.values_list("pk", flat=True)), [fresh.pk])
        self.assertFalse(Thumbnail.objects.filter(media_id=old.pk).exists())
        self.assertEqual(stored_files() - before, {fresh.storage_key})

    @override_settings(MATRIXHS_MEDIA_RETENTION_REMOTE_DAYS=7)
    def test_purge_of_remote_media_follows_its_setting(self) -> None:
        local = self.upload(self.alice)
        Media.objects.filter(pk=local.pk).update(last_access_ts=1)
        remote = Media.objects.create(
            server_name="other.example",
            media_id="cached",
            created_ts=1,
            uploaded_ts=1,
            last_access_ts=now_ms() - 8 * DAY_MS,
        )
        self.run_command("purge_media")  # local retention is off by default
        self.assertTrue(Media.objects.filter(pk=local.pk).exists())
        self.assertFalse(Media.objects.filter(pk=remote.pk).exists())

    def test_purge_removes_expired_unused_ids(self) -> None:
        self.api(self.alice).post("/_matrix/media/v1/create")
        Media.objects.update(unused_expires_ts=1)
        self.run_command("purge_media")
        self.assertFalse(Media.objects.exists())

    def test_purge_dry_run_deletes_nothing(self) -> None:
        media = self.upload(self.alice)
        Media.objects.filter(pk=media.pk).update(last_access_ts=1)
        output = self.run_command("purge_media", "--local-days", "1", "--dry-run")
        self.assertIn("Would delete 1 local media", output)
        self.assertTrue(Media.objects.exists())

    def test_quarantine_by_user_and_undo(self) -> None:
        a1, a2, b1 = self.upload(self.alice), self.upload(self.alice), self.upload(self.bob)
        self.run_command("quarantine_media", "--user", self.alice.user_id)
        quarantined = set(Media.objects.exclude(quarantined_by="").values_list("pk", flat=True))
        self.assertEqual(quarantined, {a1.pk, a2.pk})
        self.run_command("quarantine_media", "--user", self.alice.user_id, "--undo")
        self.assertFalse(Media.objects.exclude(quarantined_by="").exists())
        self.assertTrue(b1.pk)

    def test_quarantine_by_media(self) -> None:
        media = self.upload(self.alice)
        self.run_command("quarantine_media", "--media", media.mxc)
        media.refresh_from_db()
        self.assertTrue(media.is_quarantined)

    def test_delete_by_room(self) -> None:
        before = stored_files()
        used, kept = self.upload(self.alice), self.upload(self.alice)
        room_id = self.api(self.alice).post("/_matrix/client/v3/createRoom", {}).body["room_id"]
        self.api(self.alice).put(
            f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/t1",
            {"msgtype": "m.image", "body": "i", "url": used.mxc},
        )
        with self.assertRaises(CommandError):
            self.run_command("delete_media", "--room", room_id)
        output = self.run_command("delete_media", "--room", room_id, "--for-real")
        self.assertIn("Deleted 1 media", output)
        self.assertEqual(list(Media.objects.values_list("pk", flat=True)), [kept.pk])
        self.assertEqual(stored_files() - before, {kept.storage_key})

    def test_bad_mxc_is_an_error(self) -> None:
        with self.assertRaises(CommandError):
            self.run_command("delete_media", "--media", "mxc://x/../etc", "--for-real")

    def test_room_with_many_media_is_selected_whole(self) -> None:
        """Regression: one OR term per URI went past SQLite's expression depth limit."""
        room_id = self.api(self.alice).post("/_matrix/client/v3/createRoom", {}).body["room_id"]
        Media.objects.bulk_create(
            Media(server_name="test.local", media_id=f"m{i}", created_ts=1, last_access_ts=1)
            for i in range(1500)
        )
        event = Event.objects.filter(room__room_id=room_id).first()
        mentions = " ".join(f"mxc://test.local/m{i}" for i in range(1500))
        Event.objects.filter(pk=event.pk).update(json=event.json + mentions)
        self.assertEqual(media_in_room(room_id).count(), 1500)

    @override_settings(MATRIXHS_MEDIA_RETENTION_LOCAL_DAYS=30)
    def test_periodic_job_applies_the_retention_settings(self) -> None:
        from matrixhs.background import PERIODIC_JOBS, run_job

        old, fresh = self.upload(self.alice), self.upload(self.alice)
        Media.objects.filter(pk=old.pk).update(last_access_ts=now_ms() - 31 * DAY_MS)
        path = "media.actions.do_purge_by_retention"
        self.assertIn(path, [job.path for job in PERIODIC_JOBS])
        run_job(path)
        self.assertEqual(list(Media.objects.values_list("pk", flat=True)), [fresh.pk])
