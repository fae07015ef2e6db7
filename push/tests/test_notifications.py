"""GET /notifications."""

from __future__ import annotations

from push.tests.test_evaluation import CLIENT, PushTestCase

NOTIFICATIONS = f"{CLIENT}/notifications"


class NotificationsTests(PushTestCase):
    def mention(self) -> str:
        content = {
            "msgtype": "m.text",
            "body": "!",
            "m.mentions": {"user_ids": [self.alice.user_id]},
        }
        return self.send(self.bob, content)

    def test_lists_newest_first_with_event_and_actions(self) -> None:
        first = self.send(self.bob, {"msgtype": "m.text", "body": "hi"})
        second = self.mention()
        body = self.api(self.alice).get(NOTIFICATIONS).body
        self.assertEqual([n["event"]["event_id"] for n in body["notifications"]], [second, first])
        newest = body["notifications"][0]
        self.assertEqual(newest["room_id"], self.room_id)
        self.assertIn({"set_tweak": "highlight"}, newest["actions"])
        self.assertFalse(newest["read"])
        self.assertNotIn("next_token", body)

    def test_only_highlight(self) -> None:
        self.send(self.bob, {"msgtype": "m.text", "body": "hi"})
        mention = self.mention()
        body = self.api(self.alice).get(f"{NOTIFICATIONS}?only=highlight").body
        self.assertEqual([n["event"]["event_id"] for n in body["notifications"]], [mention])

    def test_pages_with_next_token(self) -> None:
        sent = [self.send(self.bob, {"msgtype": "m.text", "body": str(i)}) for i in range(5)]
        seen: list[str] = []
        token = None
        for _ in range(5):
            query = "?limit=2" + (f"&from={token}" if token else "")
            body = self.api(self.alice).get(f"{NOTIFICATIONS}{query}").body
            seen += [n["event"]["event_id"] for n in body["notifications"]]
            token = body.get("next_token")
            if token is None:
                break
        self.assertEqual(seen, sent[::-1])

    def test_read_follows_receipts(self) -> None:
        first = self.send(self.bob, {"msgtype": "m.text", "body": "one"})
        self.send(self.bob, {"msgtype": "m.text", "body": "two"})
        self.api(self.alice).post(f"{CLIENT}/rooms/{self.room_id}/receipt/m.read/{first}", {})
        body = self.api(self.alice).get(NOTIFICATIONS).body
        self.assertEqual([n["read"] for n in body["notifications"]], [False, True])

    def test_bad_parameters(self) -> None:
        for query in ("limit=x", "limit=0", "from=abc"):
            with self.subTest(query=query):
                response = self.api(self.alice).get(f"{NOTIFICATIONS}?{query}")
                self.assert_matrix_error(response, 400, "M_INVALID_PARAM")

    def test_needs_a_token(self) -> None:
        self.assert_matrix_error(self.api().get(NOTIFICATIONS), 401, "M_MISSING_TOKEN")
