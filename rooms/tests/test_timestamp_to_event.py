"""GET /v1/rooms/{roomId}/timestamp_to_event (and the MSC3030 path): the closest event
the reader may see, forwards or backwards from a time."""

from __future__ import annotations

from typing import Any
from unittest import mock

from matrixhs.time import now_ms
from rooms.models import Event
from rooms.tests.base import RoomTestCase, q


class TimestampToEventTests(RoomTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.room_id = self.create_room(self.alice, preset="private_chat")
        self.ids = []
        # In the future: after the events that created the room.
        self.t0 = now_ms() + 1_000_000
        for n, ts in enumerate((self.t0 + 10_000, self.t0 + 20_000, self.t0 + 30_000)):
            with mock.patch("rooms.events.now_ms", return_value=ts):
                self.ids.append(self.send_ok(self.alice, self.room_id, f"m{n}"))
        self.assertEqual(
            list(
                Event.objects.filter(event_id__in=self.ids)
                .order_by("origin_server_ts")
                .values_list("origin_server_ts", flat=True)
            ),
            [self.t0 + 10_000, self.t0 + 20_000, self.t0 + 30_000],
        )

    def find(
        self, ts: object, direction: str = "f", user: Any = None, unstable: bool = False
    ) -> Any:
        base = "/_matrix/client/unstable/org.matrix.msc3030" if unstable else "/_matrix/client/v1"
        api = self.api(user or self.alice)
        api.check_spec = not unstable  # the MSC path is not in the spec
        return api.get(f"{base}/rooms/{q(self.room_id)}/timestamp_to_event?ts={ts}&dir={direction}")

    def test_forwards_and_backwards(self) -> None:
        t0 = self.t0
        got = self.find(t0 + 15_000, "f")
        self.assertEqual(got.body, {"event_id": self.ids[1], "origin_server_ts": t0 + 20_000})
        self.assertEqual(self.find(t0 + 25_000, "b").body["event_id"], self.ids[1])
        self.assertEqual(self.find(t0 + 30_000, "b", unstable=True).body["event_id"], self.ids[2])
        self.assert_matrix_error(self.find(t0 + 40_000, "f"), 404, "M_NOT_FOUND")
        # Before the room existed: nothing backwards, its creation forwards.
        self.assert_matrix_error(self.find(1000, "b"), 404, "M_NOT_FOUND")
        self.assertEqual(self.find(1000, "f").status_code, 200)

    def test_outsiders_and_bad_parameters(self) -> None:
        self.assert_matrix_error(self.find(15_000, user=self.bob), 403, "M_FORBIDDEN")
        self.assert_matrix_error(self.find(15_000, "x"), 400, "M_INVALID_PARAM")
        self.assert_matrix_error(self.find("soon"), 400, "M_INVALID_PARAM")
        missing = self.api(self.alice).get(
            f"/_matrix/client/v1/rooms/{q(self.room_id)}/timestamp_to_event?dir=f"
        )
        self.assert_matrix_error(missing, 400, "M_MISSING_PARAM")
