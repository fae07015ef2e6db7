from __future__ import annotations

import time

from accounts.models import RegistrationToken
from rooms.models import EventReport
from serveradmin.tests.base import V1, AdminTestCase

CLIENT = "/_matrix/client/v3"


class EventReportTests(AdminTestCase):
    def report(self) -> tuple[str, str]:
        bob = self.api(self.bob)
        room_id = bob.post(f"{CLIENT}/createRoom", {"name": "Reported"}).body["room_id"]
        self.api(self.mallory)  # mallory joins to report
        bob.post(f"{CLIENT}/rooms/{room_id}/invite", {"user_id": "@mallory:test.local"})
        self.api(self.mallory).post(f"{CLIENT}/join/{room_id}", {})
        event_id = bob.put(
            f"{CLIENT}/rooms/{room_id}/send/m.room.message/t1", {"msgtype": "m.text", "body": "!"}
        ).body["event_id"]
        response = self.api(self.mallory).post(
            f"{CLIENT}/rooms/{room_id}/report/{event_id}", {"reason": "spam", "score": -100}
        )
        self.assertEqual(response.status_code, 200, response.body)
        return room_id, event_id

    def test_list_get_delete(self) -> None:
        room_id, event_id = self.report()
        self.report()
        api = self.api(self.alice)
        listed = api.get(f"{V1}/event_reports?limit=1").body
        self.assertEqual(listed["total"], 2)
        self.assertEqual(listed["next_token"], 1)
        newest = listed["event_reports"][0]
        self.assertNotEqual(newest["room_id"], room_id)  # newest first
        oldest = api.get(f"{V1}/event_reports?dir=f&limit=1").body["event_reports"][0]
        self.assertEqual(
            (oldest["room_id"], oldest["event_id"], oldest["name"]), (room_id, event_id, "Reported")
        )
        self.assertEqual(
            (oldest["user_id"], oldest["sender"]), ("@mallory:test.local", "@bob:test.local")
        )
        self.assertEqual((oldest["reason"], oldest["score"]), ("spam", -100))
        by_room = api.get(f"{V1}/event_reports?room_id={room_id}").body
        self.assertEqual(by_room["total"], 1)
        detail = api.get(f"{V1}/event_reports/{oldest['id']}").body
        self.assertEqual(detail["event_json"]["content"]["body"], "!")
        self.assertEqual(api.delete(f"{V1}/event_reports/{oldest['id']}").status_code, 200)
        self.assertEqual(EventReport.objects.count(), 1)
        self.assert_audited("event_report.delete", str(oldest["id"]))
        self.assert_matrix_error(api.get(f"{V1}/event_reports/{oldest['id']}"), 404, "M_NOT_FOUND")
        self.assert_matrix_error(api.get(f"{V1}/event_reports/abc"), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(api.get(f"{V1}/event_reports?dir=x"), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(self.api(self.bob).get(f"{V1}/event_reports"), 403, "M_FORBIDDEN")


class RegistrationTokenTests(AdminTestCase):
    def test_create_list_update_delete(self) -> None:
        api = self.api(self.alice)
        created = api.post(f"{V1}/registration_tokens/new", {"token": "abc", "uses_allowed": 2})
        self.assertEqual(created.status_code, 200, created.body)
        self.assertEqual(
            created.body,
            {"token": "abc", "uses_allowed": 2, "pending": 0, "completed": 0, "expiry_time": None},
        )
        random = api.post(f"{V1}/registration_tokens/new", {"length": 20}).body
        self.assertEqual(len(random["token"]), 20)
        self.assertTrue(RegistrationToken.objects.filter(token=random["token"]).exists())
        tokens = api.get(f"{V1}/registration_tokens").body["registration_tokens"]
        self.assertEqual([t["token"] for t in tokens], ["abc", random["token"]])
        past = int(time.time() * 1000) - 1
        RegistrationToken.objects.filter(token="abc").update(expiry_ts=past)
        valid = api.get(f"{V1}/registration_tokens?valid=true").body["registration_tokens"]
        self.assertEqual([t["token"] for t in valid], [random["token"]])
        invalid = api.get(f"{V1}/registration_tokens?valid=false").body["registration_tokens"]
        self.assertEqual([t["token"] for t in invalid], ["abc"])
        updated = api.put(
            f"{V1}/registration_tokens/abc", {"expiry_time": None, "uses_allowed": 5}
        ).body
        self.assertEqual((updated["expiry_time"], updated["uses_allowed"]), (None, 5))
        self.assertEqual(api.get(f"{V1}/registration_tokens/abc").body["uses_allowed"], 5)
        self.assertEqual(api.delete(f"{V1}/registration_tokens/abc").status_code, 200)
        self.assert_matrix_error(api.get(f"{V1}/registration_tokens/abc"), 404, "M_NOT_FOUND")
        self.assert_matrix_error(api.delete(f"{V1}/registration_tokens/abc"), 404, "M_NOT_FOUND")
        self.assert_audited("registration_token.create", "abc")
        self.assert_audited("registration_token.modify", "abc")
        self.assert_audited("registration_token.delete", "abc")

    def test_bad_requests(self) -> None:
        api = self.api(self.alice)
        api.post(f"{V1}/registration_tokens/new", {"token": "dup"})
        new = f"{V1}/registration_tokens/new"
        self.assert_matrix_error(api.post(new, {"token": "dup"}), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(api.post(new, {"token": "a b"}), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(api.post(new, {"uses_allowed": -1}), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(api.post(new, {"expiry_time": 1}), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(api.post(new, {"length": 0}), 400, "M_BAD_JSON")
        self.assert_matrix_error(api.post(new, {"uses_allowed": "1"}), 400, "M_BAD_JSON")
        put = api.put(f"{V1}/registration_tokens/dup", {"uses_allowed": -3})
        self.assert_matrix_error(put, 400, "M_INVALID_PARAM")
        put = api.put(f"{V1}/registration_tokens/dup", {"expiry_time": 1000})
        self.assert_matrix_error(put, 400, "M_INVALID_PARAM")
        unknown = api.put(f"{V1}/registration_tokens/nope", {"uses_allowed": 1})
        self.assert_matrix_error(unknown, 404, "M_NOT_FOUND")
        self.assert_matrix_error(
            api.get(f"{V1}/registration_tokens?valid=1"), 400, "M_INVALID_PARAM"
        )
        self.assert_matrix_error(self.api(self.bob).post(new, {}), 403, "M_FORBIDDEN")
