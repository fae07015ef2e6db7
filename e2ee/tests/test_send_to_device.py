from __future__ import annotations

from unittest import mock

from accounts.actions.devices import do_login_device
from accounts.models import User
from e2ee.actions.to_device import delete_to_device_up_to
from e2ee.models import ToDeviceMessage
from e2ee.queries import to_device_messages
from federation.models import OutboundEdu
from matrixhs.streams import Stream, current_position
from matrixhs.testing import MatrixTestCase

SEND = "/_matrix/client/v3/sendToDevice"


class SendToDeviceTests(MatrixTestCase):
    def send(
        self,
        messages: dict,
        txn_id: str = "t1",
        event_type: str = "m.test",
        user: User | None = None,
    ) -> None:
        response = self.api(user or self.alice).put(
            f"{SEND}/{event_type}/{txn_id}", {"messages": messages}
        )
        self.assertEqual((response.status_code, response.body), (200, {}))

    def inbox(self, user: User, device_id: str) -> list[dict]:
        return to_device_messages(user, device_id, since=0)[0]

    def test_message_to_one_device(self) -> None:
        before = current_position(Stream.TO_DEVICE)
        self.send({self.bob.user_id: {self.bob.test_device_id: {"hello": "bob"}}})
        self.assertEqual(
            self.inbox(self.bob, self.bob.test_device_id),
            [{"sender": self.alice.user_id, "type": "m.test", "content": {"hello": "bob"}}],
        )
        self.assertEqual(current_position(Stream.TO_DEVICE), before + 1)

    def test_star_means_every_device_of_the_user(self) -> None:
        do_login_device(self.bob, "PHONE", None)
        do_login_device(self.bob, "TABLET", None)
        self.send({self.bob.user_id: {"*": {"to": "all"}, "PHONE": {"to": "phone"}}})
        contents = {
            d: [e["content"] for e in self.inbox(self.bob, d)]
            for d in (self.bob.test_device_id, "PHONE", "TABLET")
        }
        self.assertEqual(
            contents,
            {
                self.bob.test_device_id: [{"to": "all"}],
                "PHONE": [{"to": "phone"}],
                "TABLET": [{"to": "all"}],
            },
        )

    def test_several_users_and_unknown_devices(self) -> None:
        self.send(
            {
                self.bob.user_id: {self.bob.test_device_id: {"n": 1}, "UNKNOWN": {"n": 2}},
                self.mallory.user_id: {self.mallory.test_device_id: {"n": 3}},
                "@nobody:test.local": {"X": {"n": 4}},
                "not a user id": {"X": {"n": 5}},
            }
        )
        self.assertEqual(ToDeviceMessage.objects.count(), 2)

    def test_a_transaction_id_is_done_once_per_device(self) -> None:
        messages = {self.bob.user_id: {self.bob.test_device_id: {"n": 1}}}
        self.send(messages, txn_id="same")
        self.send(messages, txn_id="same")
        self.assertEqual(ToDeviceMessage.objects.count(), 1)
        self.send(messages, txn_id="same", event_type="m.other")  # another endpoint path
        self.send(messages, txn_id="same", user=self.mallory)  # another sender
        self.assertEqual(ToDeviceMessage.objects.count(), 3)

    def test_transaction_ids_may_hold_slashes(self) -> None:
        messages = {self.bob.user_id: {self.bob.test_device_id: {"n": 1}}}
        self.send(messages, txn_id="a%2Fb")
        self.send(messages, txn_id="a%2Fb")
        self.assertEqual(ToDeviceMessage.objects.count(), 1)

    def test_remote_recipients_wait_in_the_outbound_queue(self) -> None:
        self.send(
            {
                "@carol:remote.example": {"DEV": {"k": "v"}, "*": {"k": "all"}},
                "@dave:remote.example": {"D2": {"k": "d"}},
                "@erin:other.example": {"*": {"k": "e"}},
            }
        )
        rows = {row.destination: row for row in OutboundEdu.objects.all()}
        self.assertEqual(sorted(rows), ["other.example", "remote.example"])
        self.assertEqual(rows["remote.example"].edu_type, "m.direct_to_device")
        edu = rows["remote.example"].content
        self.assertEqual((edu["sender"], edu["type"]), (self.alice.user_id, "m.test"))
        self.assertEqual(
            edu["messages"],
            {
                "@carol:remote.example": {"DEV": {"k": "v"}, "*": {"k": "all"}},
                "@dave:remote.example": {"D2": {"k": "d"}},
            },
        )
        self.assertNotEqual(rows["other.example"].content["message_id"], edu["message_id"])

    def test_recipients_are_woken_after_commit(self) -> None:
        with mock.patch("matrixhs.notifier.notify_users") as notify:
            with self.captureOnCommitCallbacks(execute=True):
                self.send({self.bob.user_id: {"*": {"n": 1}}, self.mallory.user_id: {"X": {}}})
        notify.assert_called_once()
        self.assertEqual(set(notify.call_args.args[0]), {self.bob.user_id})

    def test_bad_requests(self) -> None:
        url = f"{SEND}/m.test/t9"
        api = self.api(self.alice)
        self.assert_matrix_error(api.put(url, {}), 400, "M_MISSING_PARAM")
        self.assert_matrix_error(api.put(url, {"messages": []}), 400, "M_BAD_JSON")
        self.assert_matrix_error(
            api.put(url, {"messages": {self.bob.user_id: []}}), 400, "M_BAD_JSON"
        )
        self.assert_matrix_error(
            api.put(url, {"messages": {self.bob.user_id: {"D": "text"}}}), 400, "M_BAD_JSON"
        )
        self.assert_matrix_error(
            api.put(f"{SEND}/{'x' * 300}/t9", {"messages": {}}), 400, "M_INVALID_PARAM"
        )
        big = {self.bob.user_id: {self.bob.test_device_id: {"pad": "x" * 70_000}}}
        self.assert_matrix_error(api.put(url, {"messages": big}), 413, "M_TOO_LARGE")
        self.assertFalse(ToDeviceMessage.objects.exists())

    def test_a_refused_request_leaves_its_transaction_id_free(self) -> None:
        url = f"{SEND}/m.test/retry"
        self.api(self.alice).put(url, {"messages": []})
        self.send({self.bob.user_id: {self.bob.test_device_id: {}}}, txn_id="retry")
        self.assertEqual(ToDeviceMessage.objects.count(), 1)


class ToDeviceInboxTests(MatrixTestCase):
    """What /sync uses: read in order, limited, then acknowledged."""

    def setUp(self) -> None:
        super().setUp()
        for n in range(5):
            self.api(self.alice).put(
                f"{SEND}/m.test/t{n}", {"messages": {self.bob.user_id: {"*": {"n": n}}}}
            )
        self.device_id = self.bob.test_device_id

    def test_messages_in_order_up_to_the_limit(self) -> None:
        events, position = to_device_messages(self.bob, self.device_id, since=0, limit=3)
        self.assertEqual([e["content"]["n"] for e in events], [0, 1, 2])
        rest, end = to_device_messages(self.bob, self.device_id, since=position, limit=3)
        self.assertEqual([e["content"]["n"] for e in rest], [3, 4])
        self.assertEqual(end, current_position(Stream.TO_DEVICE))

    def test_until_bounds_the_read(self) -> None:
        events, _ = to_device_messages(self.bob, self.device_id, since=0)
        first = ToDeviceMessage.objects.order_by("stream_id").first()
        assert first is not None
        events, position = to_device_messages(self.bob, self.device_id, 0, until=first.stream_id)
        self.assertEqual((len(events), position), (1, first.stream_id))

    def test_acknowledged_messages_are_deleted(self) -> None:
        _, position = to_device_messages(self.bob, self.device_id, since=0, limit=2)
        self.assertEqual(delete_to_device_up_to(self.bob, self.device_id, position), 2)
        events, _ = to_device_messages(self.bob, self.device_id, since=0)
        self.assertEqual([e["content"]["n"] for e in events], [2, 3, 4])

    def test_other_devices_are_untouched(self) -> None:
        self.assertEqual(to_device_messages(self.mallory, self.device_id, since=0)[0], [])
        self.assertEqual(delete_to_device_up_to(self.alice, self.device_id, 10**9), 0)
        self.assertEqual(ToDeviceMessage.objects.count(), 5)
