"""Delivery to http pushers: a real push gateway on 127.0.0.1 that records requests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

from django.test import override_settings
from jsonschema import Draft202012Validator

from matrixhs.tests.http_server import LocalServer, local_server
from matrixhs.time import now_ms
from push.actions.delivery import RETRY_MAX_MS, _claim, drain, due_pushers
from push.models import PushDelivery, Pusher
from push.tests.test_evaluation import CLIENT, PushTestCase

NOTIFY = "/_matrix/push/v1/notify"
SPEC = Path("/work/shared/matrix-spec/bundled/push-gateway.json")


@cache
def notify_validator() -> Draft202012Validator:
    spec = json.loads(SPEC.read_text())
    schema = spec["paths"][NOTIFY]["post"]["requestBody"]["content"]["application/json"]
    return Draft202012Validator(schema["schema"])


@override_settings(MATRIXHS_PUSH_ALLOW_HTTP=True, MATRIXHS_OUTBOUND_IP_ALLOWLIST=["127.0.0.1/32"])
class DeliveryTests(PushTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.gateway_down = False
        self.rejected: list[str] = []
        self.gateway = self.enterContext(self.running_gateway())

    @contextmanager
    def running_gateway(self) -> Iterator[LocalServer]:
        def notify() -> tuple[int, dict[str, str], bytes]:
            if self.gateway_down:
                return 503, {}, b"down"
            answer = json.dumps({"rejected": self.rejected}).encode()
            return 200, {"Content-Type": "application/json"}, answer

        with local_server({NOTIFY: notify}) as server:
            yield server

    def set_pusher(self, fmt: str | None = None) -> Pusher:
        data: dict[str, Any] = {"url": self.gateway.url(NOTIFY)}
        if fmt:
            data["format"] = fmt
        body = {
            "kind": "http",
            "app_id": "im.vector.app.android",
            "pushkey": "pushkey-of-alice",
            "app_display_name": "Element",
            "device_display_name": "Phone",
            "lang": "en",
            "data": data,
        }
        self.assertEqual(self.api(self.alice).post(f"{CLIENT}/pushers/set", body).status_code, 200)
        return Pusher.objects.get(user=self.alice)

    def received(self) -> list[dict[str, Any]]:
        """The notifications the gateway answered 200 to (checked against the spec)."""
        bodies = []
        for path, raw in self.gateway.requests:
            self.assertEqual(path, NOTIFY)
            body = json.loads(raw)
            notify_validator().validate(body)
            bodies.append(body["notification"])
        return bodies

    def mention(self) -> str:
        content = {
            "msgtype": "m.text",
            "body": "!",
            "m.mentions": {"user_ids": [self.alice.user_id]},
        }
        return self.send(self.bob, content)

    def test_mention_is_pushed_with_counts_and_tweaks(self) -> None:
        pusher = self.set_pusher()
        self.send(self.bob, {"msgtype": "m.text", "body": "hello"})
        mention = self.mention()
        self.assertEqual(drain(str(pusher.pk)), 2)
        first, second = self.received()
        self.assertEqual(second["event_id"], mention)
        self.assertEqual(second["counts"], {"unread": 2})
        self.assertEqual(second["prio"], "high")
        self.assertEqual(second["sender"], self.bob.user_id)
        self.assertEqual(second["content"]["body"], "!")
        device = second["devices"][0]
        self.assertEqual(device["pushkey"], "pushkey-of-alice")
        self.assertNotIn("url", device["data"])
        self.assertEqual(device["tweaks"], {"sound": "default", "highlight": True})
        # A one-to-one room's message rings too (".m.rule.room_one_to_one").
        self.assertEqual(first["devices"][0]["tweaks"], {"sound": "default"})
        self.assertEqual(first["counts"], {"unread": 2})  # the count when it is sent
        self.assertFalse(PushDelivery.objects.exists())

    def test_edit_is_not_pushed(self) -> None:
        pusher = self.set_pusher()
        original = self.mention()
        edit = {
            "msgtype": "m.text",
            "body": "* edited",
            "m.mentions": {},
            "m.new_content": {"msgtype": "m.text", "body": "edited"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": original},
        }
        self.send(self.bob, edit)
        drain(str(pusher.pk))
        self.assertEqual([n["event_id"] for n in self.received()], [original])

    def test_event_id_only_format(self) -> None:
        pusher = self.set_pusher("event_id_only")
        event_id = self.mention()
        drain(str(pusher.pk))
        (notification,) = self.received()
        self.assertEqual(notification["event_id"], event_id)
        self.assertEqual(notification["room_id"], self.room_id)
        self.assertEqual(notification["counts"], {"unread": 1})
        for detail in ("content", "sender", "type"):
            self.assertNotIn(detail, notification)

    def test_outage_then_recovery_delivers_each_once(self) -> None:
        pusher = self.set_pusher()
        self.gateway_down = True
        sent = [self.send(self.bob, {"msgtype": "m.text", "body": str(i)}) for i in range(3)]
        self.assertEqual(drain(str(pusher.pk)), 0)
        self.assertEqual(len(self.gateway.requests), 1)  # one try, then backed off
        self.assertEqual(drain(str(pusher.pk)), 0)
        self.assertEqual(len(self.gateway.requests), 1)
        self.assertEqual(due_pushers(), [])
        self.gateway_down = False
        self.gateway.requests.clear()
        later = now_ms() + 2 * RETRY_MAX_MS
        with mock.patch("push.actions.delivery.now_ms", return_value=later):
            self.assertEqual(due_pushers(later), [str(pusher.pk)])
            self.assertEqual(drain(str(pusher.pk)), 3)
            self.assertEqual(drain(str(pusher.pk)), 0)
        self.assertEqual([n["event_id"] for n in self.received()], sent)
        pusher.refresh_from_db()
        self.assertEqual((pusher.failures, pusher.retry_at_ms), (0, 0))

    def test_a_dead_drain_leaves_the_queue_to_the_next(self) -> None:
        pusher = self.set_pusher()
        event_id = self.mention()
        self.assertTrue(_claim(pusher.pk, now_ms()))  # a worker took it, then died
        self.assertEqual(drain(str(pusher.pk)), 0)
        self.assertEqual(self.gateway.requests, [])
        later = now_ms() + 2 * RETRY_MAX_MS
        with mock.patch("push.actions.delivery.now_ms", return_value=later):
            self.assertEqual(drain(str(pusher.pk)), 1)
        self.assertEqual([n["event_id"] for n in self.received()], [event_id])

    def test_rejected_pushkey_removes_the_pusher(self) -> None:
        pusher = self.set_pusher()
        self.rejected = ["pushkey-of-alice"]
        self.mention()
        self.mention()
        drain(str(pusher.pk))
        self.assertEqual(len(self.gateway.requests), 1)
        self.assertFalse(Pusher.objects.filter(pk=pusher.pk).exists())
        self.assertFalse(PushDelivery.objects.exists())

    def test_private_gateway_address_is_not_reached_unless_allowed(self) -> None:
        pusher = self.set_pusher()
        self.mention()
        with override_settings(MATRIXHS_OUTBOUND_IP_ALLOWLIST=[]):
            self.assertEqual(drain(str(pusher.pk)), 0)
        self.assertEqual(self.gateway.requests, [])
        pusher.refresh_from_db()
        self.assertEqual(pusher.failures, 1)

    def test_no_queue_for_users_without_http_pushers(self) -> None:
        self.mention()
        self.assertFalse(PushDelivery.objects.exists())
