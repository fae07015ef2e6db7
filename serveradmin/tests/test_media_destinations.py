from __future__ import annotations

import time

from federation.models import Destination
from media.models import Media
from serveradmin.tests.base import V1, AdminTestCase

UPLOAD = "/_matrix/media/v3/upload"


class MediaTests(AdminTestCase):
    def upload(self, data: bytes = b"hello") -> str:
        uri = self.api(self.bob).upload(UPLOAD, data, "text/plain").body["content_uri"]
        return str(uri).rsplit("/", 1)[1]

    def test_quarantine_and_unquarantine(self) -> None:
        media_id = self.upload()
        api = self.api(self.alice)
        response = api.post(f"{V1}/media/quarantine/test.local/{media_id}")
        self.assertEqual(response.status_code, 200, response.body)
        self.assertEqual(Media.objects.get(media_id=media_id).quarantined_by, "@alice:test.local")
        download = self.api(self.bob).get(
            f"/_matrix/client/v1/media/download/test.local/{media_id}"
        )
        self.assertEqual(download.status_code, 404)
        self.assert_audited("media.quarantine", f"mxc://test.local/{media_id}")
        api.post(f"{V1}/media/unquarantine/test.local/{media_id}")
        self.assertEqual(Media.objects.get(media_id=media_id).quarantined_by, "")
        missing = api.post(f"{V1}/media/quarantine/test.local/nope")
        self.assert_matrix_error(missing, 404, "M_NOT_FOUND")

    def test_delete_by_id(self) -> None:
        media_id = self.upload()
        api = self.api(self.alice)
        response = api.delete(f"{V1}/media/test.local/{media_id}")
        self.assertEqual(response.body, {"deleted_media": [media_id], "total": 1})
        self.assertFalse(Media.objects.filter(media_id=media_id).exists())
        self.assert_matrix_error(
            api.delete(f"{V1}/media/test.local/{media_id}"), 404, "M_NOT_FOUND"
        )
        self.assert_matrix_error(api.delete(f"{V1}/media/elsewhere/x"), 400, "M_INVALID_PARAM")

    def test_delete_before_keeps_avatars_and_newer_media(self) -> None:
        old, avatar, new = self.upload(b"old"), self.upload(b"avatar"), self.upload(b"new")
        Media.objects.filter(media_id__in=[old, avatar]).update(last_access_ts=1000)
        self.api(self.bob).put(
            "/_matrix/client/v3/profile/@bob:test.local/avatar_url",
            {"avatar_url": f"mxc://test.local/{avatar}"},
        )
        Media.objects.filter(media_id=avatar).update(last_access_ts=1000)
        api = self.api(self.alice)
        response = api.post(f"{V1}/media/delete?before_ts=2000")
        self.assertEqual(response.body, {"deleted_media": [old], "total": 1})
        self.assertEqual(set(Media.objects.values_list("media_id", flat=True)), {avatar, new})
        response = api.post(f"{V1}/media/test.local/delete?before_ts=2000&keep_profiles=false")
        self.assertEqual(response.body["deleted_media"], [avatar])
        self.assert_matrix_error(api.post(f"{V1}/media/delete"), 400, "M_MISSING_PARAM")
        self.assert_matrix_error(api.post(f"{V1}/media/delete?before_ts=x"), 400, "M_INVALID_PARAM")

    def test_user_media_list_and_delete(self) -> None:
        ids = [self.upload(bytes([i]) * (i + 1)) for i in range(3)]
        api = self.api(self.alice)
        listed = api.get(f"{V1}/users/@bob:test.local/media?limit=2").body
        self.assertEqual(listed["total"], 3)
        self.assertEqual(listed["next_token"], 2)
        self.assertEqual([m["media_id"] for m in listed["media"]], ids[:2])
        by_size = api.get(f"{V1}/users/@bob:test.local/media?order_by=media_length&dir=b").body
        self.assertEqual(by_size["media"][0]["media_length"], 3)
        deleted = api.delete(f"{V1}/users/@bob:test.local/media").body
        self.assertEqual((sorted(deleted["deleted_media"]), deleted["total"]), (sorted(ids), 3))
        self.assertFalse(Media.objects.filter(user=self.bob).exists())
        bad = api.get(f"{V1}/users/@bob:test.local/media?order_by=x")
        self.assert_matrix_error(bad, 400, "M_INVALID_PARAM")
        self.assert_matrix_error(api.get(f"{V1}/users/@x:test.local/media"), 404, "M_NOT_FOUND")


class RoomAndUserMediaTests(AdminTestCase):
    upload = MediaTests.upload

    def test_room_media_and_quarantine(self) -> None:
        media_id = self.upload()
        bob = self.api(self.bob)
        room_id = bob.post("/_matrix/client/v3/createRoom", {}).body["room_id"]
        bob.put(
            f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/t1",
            {
                "msgtype": "m.image",
                "body": "pic",
                "url": f"mxc://test.local/{media_id}",
                "info": {"thumbnail_url": "mxc://far.example/remote1"},
            },
        )
        api = self.api(self.alice)
        listed = api.get(f"{V1}/room/{room_id}/media").body
        self.assertEqual(
            listed,
            {"local": [f"mxc://test.local/{media_id}"], "remote": ["mxc://far.example/remote1"]},
        )
        quarantined = api.post(f"{V1}/room/{room_id}/media/quarantine").body
        self.assertEqual(quarantined, {"num_quarantined": 1})
        self.assertTrue(Media.objects.get(media_id=media_id).is_quarantined)
        self.assert_audited("media.quarantine_room", room_id)
        missing = api.get(f"{V1}/room/!nope:test.local/media")
        self.assert_matrix_error(missing, 404, "M_NOT_FOUND")

    def test_user_media_quarantine(self) -> None:
        self.upload(b"a")
        self.upload(b"b")
        api = self.api(self.alice)
        body = api.post(f"{V1}/user/@bob:test.local/media/quarantine").body
        self.assertEqual(body, {"num_quarantined": 2})
        self.assertFalse(Media.objects.filter(user=self.bob, quarantined_by="").exists())


class DestinationTests(AdminTestCase):
    def test_list_get_reset(self) -> None:
        now = int(time.time() * 1000)
        Destination.objects.create(server_name="good.example", last_success_ms=now)
        Destination.objects.create(
            server_name="bad.example",
            failures=3,
            retry_interval_ms=240_000,
            retry_at_ms=now + 200_000,
            last_error="connection refused",
        )
        api = self.api(self.alice)
        listed = api.get(f"{V1}/federation/destinations").body
        self.assertEqual(listed["total"], 2)
        self.assertEqual(
            [d["destination"] for d in listed["destinations"]], ["bad.example", "good.example"]
        )
        bad = api.get(f"{V1}/federation/destinations/bad.example").body
        self.assertEqual(bad["retry_interval"], 240_000)
        self.assertEqual(bad["retry_last_ts"], now - 40_000)
        self.assertEqual(bad["failure_ts"], now - 40_000)
        good = api.get(f"{V1}/federation/destinations/good.example").body
        self.assertIsNone(good["failure_ts"])
        reset = api.post(f"{V1}/federation/destinations/bad.example/reset_connection")
        self.assertEqual(reset.status_code, 200, reset.body)
        row = Destination.objects.get(server_name="bad.example")
        self.assertEqual((row.failures, row.retry_at_ms, row.retry_interval_ms), (0, 0, 0))
        self.assert_audited("destination.reset_connection", "bad.example")
        page = api.get(f"{V1}/federation/destinations?limit=1&order_by=destination&dir=b").body
        self.assertEqual(
            (page["destinations"][0]["destination"], page["next_token"]), ("good.example", "1")
        )
        self.assert_matrix_error(
            api.get(f"{V1}/federation/destinations/x.example"), 404, "M_NOT_FOUND"
        )
        self.assert_matrix_error(
            api.post(f"{V1}/federation/destinations/x.example/reset_connection"), 404, "M_NOT_FOUND"
        )
        self.assert_matrix_error(
            api.get(f"{V1}/federation/destinations?order_by=x"), 400, "M_INVALID_PARAM"
        )
