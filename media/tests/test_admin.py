"""Quarantine and deletion from the Django admin: by media, by user (search @user), by
room (search !room)."""

from __future__ import annotations

from matrixhs.testing import MatrixTestCase
from media.models import Media
from media.tests.test_upload import stored_files

UPLOAD = "/_matrix/media/v3/upload"
DOWNLOAD = "/_matrix/client/v1/media/download"


class MediaAdminTest(MatrixTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.root = self.make_user("root", admin=True)
        self.client.force_login(self.root)

    def upload(self, user: object, data: bytes = b"x") -> Media:
        uri = self.api(user).upload(UPLOAD, data, "text/plain").body["content_uri"]
        return Media.objects.get(media_id=uri.rsplit("/", 1)[1])

    def test_quarantine_action_stops_serving(self) -> None:
        media = self.upload(self.alice)
        self.client.post(
            "/admin/media/media/", {"action": "quarantine", "_selected_action": [media.pk]}
        )
        media.refresh_from_db()
        self.assertEqual(media.quarantined_by, "@root:test.local")
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{media.server_name}/{media.media_id}")
        self.assert_matrix_error(resp, 404, "M_NOT_FOUND")
        self.client.post(
            "/admin/media/media/", {"action": "unquarantine", "_selected_action": [media.pk]}
        )
        resp = self.api(self.bob).fetch(f"{DOWNLOAD}/{media.server_name}/{media.media_id}")
        self.assertEqual(resp.status_code, 200)

    def test_delete_action_removes_rows_and_files(self) -> None:
        before = stored_files()
        media = self.upload(self.alice)
        self.client.post(
            "/admin/media/media/", {"action": "delete_media", "_selected_action": [media.pk]}
        )
        self.assertFalse(Media.objects.exists())
        self.assertEqual(stored_files(), before)

    def test_search_by_user_lists_their_media(self) -> None:
        mine, theirs = self.upload(self.alice), self.upload(self.bob)
        page = self.client.get("/admin/media/media/?q=@alice:test.local")
        self.assertContains(page, mine.media_id)
        self.assertNotContains(page, theirs.media_id)

    def test_search_by_room_lists_media_its_events_use(self) -> None:
        used, unused = self.upload(self.alice), self.upload(self.alice)
        room_id = self.api(self.alice).post("/_matrix/client/v3/createRoom", {}).body["room_id"]
        self.api(self.alice).put(
            f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/t1",
            {"msgtype": "m.file", "body": "f", "url": used.mxc},
        )
        page = self.client.get(f"/admin/media/media/?q={room_id}")
        self.assertContains(page, used.media_id)
        self.assertNotContains(page, unused.media_id)
