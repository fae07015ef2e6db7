"""Push rules evaluated when events are stored: notifications for the room's members."""

from __future__ import annotations

from typing import Any

from matrixhs.testing import MatrixTestCase
from push.models import Notification

CLIENT = "/_matrix/client/v3"


class PushTestCase(MatrixTestCase):
    """Alice and Bob in a room Alice made."""

    def setUp(self) -> None:
        super().setUp()
        self.room_id = self.api(self.alice).post(f"{CLIENT}/createRoom", {}).body["room_id"]
        self.api(self.alice).post(
            f"{CLIENT}/rooms/{self.room_id}/invite", {"user_id": self.bob.user_id}
        )
        self.api(self.bob).post(f"{CLIENT}/join/{self.room_id}", {})
        self.txn = 0

    def send(self, user: Any, content: dict[str, Any]) -> str:
        self.txn += 1
        path = f"{CLIENT}/rooms/{self.room_id}/send/m.room.message/t{self.txn}"
        return str(self.api(user).put(path, content).body["event_id"])


class EvaluationTests(PushTestCase):
    def test_message_notifies_other_members_not_the_sender(self) -> None:
        event_id = self.send(self.bob, {"msgtype": "m.text", "body": "hi"})
        notes = Notification.objects.filter(event_id=event_id)
        self.assertEqual([n.user_id for n in notes], [self.alice.user_id])
        self.assertFalse(notes[0].highlight)
        self.assertEqual(notes[0].thread_id, "main")

    def test_mention_highlights(self) -> None:
        content = {
            "msgtype": "m.text",
            "body": "alice!",
            "m.mentions": {"user_ids": [self.alice.user_id]},
        }
        note = Notification.objects.get(event_id=self.send(self.bob, content))
        self.assertTrue(note.highlight)

    def test_edit_does_not_notify(self) -> None:
        original = self.send(self.bob, {"msgtype": "m.text", "body": "hi"})
        edit = {
            "msgtype": "m.text",
            "body": "* hello",
            "m.new_content": {"msgtype": "m.text", "body": "hello"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": original},
        }
        self.assertFalse(Notification.objects.filter(event_id=self.send(self.bob, edit)).exists())

    def test_thread_reply_is_counted_in_its_thread(self) -> None:
        root = self.send(self.alice, {"msgtype": "m.text", "body": "root"})
        reply = {
            "msgtype": "m.text",
            "body": "in thread",
            "m.relates_to": {"rel_type": "m.thread", "event_id": root},
        }
        note = Notification.objects.get(event_id=self.send(self.bob, reply))
        self.assertEqual(note.thread_id, root)

    def test_invite_notifies_the_invitee(self) -> None:
        self.api(self.alice).post(
            f"{CLIENT}/rooms/{self.room_id}/invite", {"user_id": self.mallory.user_id}
        )
        self.assertTrue(Notification.objects.filter(user_id=self.mallory.user_id).exists())

    def test_rule_change_applies_to_the_next_event(self) -> None:
        self.send(self.bob, {"msgtype": "m.text", "body": "first"})
        self.api(self.alice).put(f"{CLIENT}/pushrules/global/room/{self.room_id}", {"actions": []})
        muted = self.send(self.bob, {"msgtype": "m.text", "body": "second"})
        self.assertFalse(Notification.objects.filter(event_id=muted).exists())
        self.api(self.alice).put(
            f"{CLIENT}/pushrules/global/content/cake", {"pattern": "cake", "actions": ["notify"]}
        )
        self.api(self.alice).delete(f"{CLIENT}/pushrules/global/room/{self.room_id}")
        cake = self.send(self.bob, {"msgtype": "m.text", "body": "I like Cake."})
        self.assertEqual(Notification.objects.get(event_id=cake).actions, ["notify"])

    def test_master_rule_silences_everything(self) -> None:
        self.api(self.alice).put(
            f"{CLIENT}/pushrules/global/override/.m.rule.master/enabled", {"enabled": True}
        )
        event_id = self.send(self.bob, {"msgtype": "m.text", "body": "hi"})
        self.assertFalse(Notification.objects.filter(event_id=event_id).exists())

    def test_evaluation_can_be_turned_off(self) -> None:
        with self.settings(MATRIXHS_PUSH_EVALUATION=False):
            event_id = self.send(self.bob, {"msgtype": "m.text", "body": "hi"})
        self.assertFalse(Notification.objects.filter(event_id=event_id).exists())
