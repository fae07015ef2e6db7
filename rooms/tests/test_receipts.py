from __future__ import annotations

from accounts.models import AccountData
from matrixhs.streams import typing_position
from rooms.models import EventReport, Receipt
from rooms.tests.base import V3, RoomTestCase, q
from sync.actions import typing_users


class ReceiptTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, self.room)
        self.first = self.send_ok(self.alice, self.room, "one")
        self.second = self.send_ok(self.alice, self.room, "two")

    def receipt(self, event_id: str, receipt_type: str = "m.read", body: dict | None = None):
        return self.api(self.bob).post(
            f"{V3}/rooms/{q(self.room)}/receipt/{receipt_type}/{q(event_id)}", body or {}
        )

    def test_read_receipt_is_stored_and_never_goes_back(self) -> None:
        self.assertEqual(self.receipt(self.second).status_code, 200)
        self.receipt(self.first)
        self.assertEqual(Receipt.objects.get(receipt_type="m.read").event_id, self.second)

    def test_private_and_threaded_receipts(self) -> None:
        self.receipt(self.first, "m.read.private")
        self.receipt(self.first, "m.read", {"thread_id": "main"})
        kinds = set(Receipt.objects.values_list("receipt_type", "thread_id"))
        self.assertEqual(kinds, {("m.read.private", ""), ("m.read", "main")})

    def test_bad_receipts(self) -> None:
        self.assert_matrix_error(self.receipt(self.first, "m.nope"), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(self.receipt(self.first, body={"thread_id": 5}), 400, "M_BAD_JSON")
        self.assert_matrix_error(
            self.receipt(self.first, body={"thread_id": "x"}), 400, "M_INVALID_PARAM"
        )
        self.assert_matrix_error(self.receipt("$unknown"), 404, "M_NOT_FOUND")
        response = self.api(self.mallory).post(
            f"{V3}/rooms/{q(self.room)}/receipt/m.read/{q(self.first)}", {}
        )
        self.assert_matrix_error(response, 403, "M_FORBIDDEN")
        self.assertFalse(Receipt.objects.exists())

    def test_read_markers(self) -> None:
        response = self.api(self.bob).post(
            f"{V3}/rooms/{q(self.room)}/read_markers",
            {"m.fully_read": self.first, "m.read": self.second},
        )
        self.assertEqual(response.status_code, 200)
        marker = AccountData.objects.get(user=self.bob, room_id=self.room, type="m.fully_read")
        self.assertEqual(marker.content, {"event_id": self.first})
        self.assertEqual(Receipt.objects.get().event_id, self.second)


class TypingTests(RoomTestCase):
    def test_typing_starts_and_stops(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        url = f"{V3}/rooms/{q(room)}/typing/{q('@alice:test.local')}"
        before = typing_position()
        self.assertEqual(
            self.api(self.alice).put(url, {"typing": True, "timeout": 30000}).status_code, 200
        )
        self.assertEqual(typing_users(room), ["@alice:test.local"])
        self.assertGreater(typing_position(), before)
        self.api(self.alice).put(url, {"typing": False})
        self.assertEqual(typing_users(room), [])

    def test_typing_expires(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        url = f"{V3}/rooms/{q(room)}/typing/{q('@alice:test.local')}"
        self.api(self.alice).put(url, {"typing": True, "timeout": 1000})
        import time

        self.assertEqual(typing_users(room, int(time.time() * 1000) + 2000), [])

    def test_typing_errors(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        url = f"{V3}/rooms/{q(room)}/typing/{q('@alice:test.local')}"
        self.assert_matrix_error(self.api(self.bob).put(url, {"typing": True}), 403, "M_FORBIDDEN")
        self.assert_matrix_error(self.api(self.alice).put(url, {}), 400, "M_MISSING_PARAM")
        other = f"{V3}/rooms/{q(room)}/typing/{q('@bob:test.local')}"
        self.assert_matrix_error(
            self.api(self.bob).put(other, {"typing": True}), 403, "M_FORBIDDEN"
        )


class ReportTests(RoomTestCase):
    def test_report_event(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        event_id = self.send_ok(self.alice, room, "rude")
        response = self.api(self.bob).post(
            f"{V3}/rooms/{q(room)}/report/{q(event_id)}", {"reason": "rude", "score": -100}
        )
        self.assertEqual(response.status_code, 200)
        report = EventReport.objects.get()
        self.assertEqual(
            (report.event_id, report.reporter, report.score), (event_id, "@bob:test.local", -100)
        )

    def test_report_unknown_event(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        response = self.api(self.alice).post(f"{V3}/rooms/{q(room)}/report/{q('$nope')}", {})
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")
        self.assertFalse(EventReport.objects.exists())

    def test_user_who_left_cannot_report(self) -> None:
        """Spec 1.8 (MSC2249): only members joined to the room may report its events."""
        room = self.create_room(self.alice, preset="public_chat")
        self.join(self.bob, room)
        event_id = self.send_ok(self.alice, room, "rude")
        self.api(self.bob).post(f"{V3}/rooms/{q(room)}/leave", {})
        response = self.api(self.bob).post(f"{V3}/rooms/{q(room)}/report/{q(event_id)}", {})
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")
        self.assertFalse(EventReport.objects.exists())

    def test_non_member_cannot_report_world_readable_room(self) -> None:
        room = self.create_room(self.alice, preset="public_chat")
        self.api(self.alice).put(
            f"{V3}/rooms/{q(room)}/state/m.room.history_visibility/",
            {"history_visibility": "world_readable"},
        )
        event_id = self.send_ok(self.alice, room, "rude")
        response = self.api(self.bob).post(f"{V3}/rooms/{q(room)}/report/{q(event_id)}", {})
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")
        response = self.api(self.bob).post(f"{V3}/rooms/{q(room)}/report", {})
        self.assert_matrix_error(response, 404, "M_NOT_FOUND")
