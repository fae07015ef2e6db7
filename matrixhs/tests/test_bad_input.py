"""Bad input answers a Matrix 400, never a 500, on both databases.

Each test is one family of inputs that used to reach the database or the interpreter
unchecked: numbers written with non-ASCII digits, integers too large for a column, JSON
nested past the interpreter's recursion limit, NUL characters and lone surrogates (which
PostgreSQL cannot store and UTF-8 cannot encode), values longer than their column, and
header bytes that are not UTF-8.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

from matrixhs.testing import MatrixTestCase
from sync.consumers import LongPollRequest, SlidingSyncConsumer, SyncLongPollConsumer

SLIDING = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
HUGE = "9" * 40


class BadInputTestCase(MatrixTestCase):
    def setUp(self) -> None:
        super().setUp()
        created = self.api(self.alice).post("/_matrix/client/v3/createRoom", {})
        self.room_id = created.body["room_id"]
        self.room = quote(self.room_id)
        self.me = quote(self.alice.user_id)

    def assert_400(self, response: Any, errcodes: tuple[str, ...] = ()) -> None:
        self.assertEqual(response.status_code, 400, response.body)
        if errcodes:
            self.assertIn(response.body["errcode"], errcodes, response.body)

    def long_poll(
        self,
        endpoint: Any,
        query: bytes = b"",
        body: Any = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> tuple[int, Any]:
        """One long-poll request, read in this thread (it sees the test's data), errors
        rendered as the consumer renders them."""
        from matrixhs.errors import render_error

        scope = {
            "method": "POST" if body is not None else "GET",
            "query_string": query,
            "headers": [
                (b"authorization", f"Bearer {self.alice.test_token}".encode()),  # type: ignore[attr-defined]
                *(headers or []),
            ],
            "client": ("127.0.0.1", 1),
        }
        try:
            request = LongPollRequest(scope, json.dumps(body).encode() if body is not None else b"")
            request.timeout_ms()
            status, answer, _, _ = endpoint.compute(request, endpoint._prepare(request))
        except Exception as exc:
            status, answer, _ = render_error(exc)
        return status, answer


class NumbersTest(BadInputTestCase):
    """Numbers are ASCII digits only, and no longer than a database integer."""

    def test_messages_limit_zero_or_unicode_digits_is_invalid_param(self) -> None:
        for limit in ("0", "²", "-1", HUGE):
            path = f"/_matrix/client/v3/rooms/{self.room}/messages?dir=b&limit={quote(limit)}"
            self.assert_400(self.api(self.alice).get(path), ("M_INVALID_PARAM",))

    def test_messages_token_with_unicode_digits_or_huge_is_invalid_param(self) -> None:
        for token in ("s²", "t²_0", f"s{HUGE}", "s-1"):
            path = f"/_matrix/client/v3/rooms/{self.room}/messages?dir=b&from={quote(token)}"
            self.assert_400(self.api(self.alice).get(path), ("M_INVALID_PARAM",))

    def test_sync_since_and_timeout_with_unicode_digits_or_huge_are_refused(self) -> None:
        for query in (
            "since=s²_0_0_0_0_0_0",
            f"since=s{HUGE}_0_0_0_0_0_0",
            "timeout=²",
            f"timeout={HUGE}",
        ):
            status, body = self.long_poll(SyncLongPollConsumer(), quote(query, safe="=").encode())
            self.assertEqual((status, body["errcode"]), (400, "M_INVALID_PARAM"), query)

    def test_keys_changes_with_unicode_digits_or_huge_is_invalid_param(self) -> None:
        for token in ("s²_0_0_0_0_0_0", f"s0_0_0_0_{HUGE}_0_0"):
            path = f"/_matrix/client/v3/keys/changes?from={quote(token)}&to={quote(token)}"
            self.assert_400(self.api(self.alice).get(path), ("M_INVALID_PARAM",))

    def test_threads_from_with_unicode_digits_or_huge_is_invalid_param(self) -> None:
        for token in ("th²", f"th{HUGE}"):
            path = f"/_matrix/client/v1/rooms/{self.room}/threads?from={quote(token)}"
            self.assert_400(self.api(self.alice).get(path), ("M_INVALID_PARAM",))

    def test_sliding_pos_and_to_device_with_bad_numbers_are_refused(self) -> None:
        for query in ("pos=0~².1", f"pos=0~{HUGE}.1", "pos=s²_0_0_0_0_0_0~1.1"):
            status, body = self.long_poll(
                SlidingSyncConsumer(), quote(query, safe="=").encode(), body={}
            )
            self.assertEqual(status, 400, (query, body))
        for to_device in (
            {"since": "²"},
            {"since": HUGE},
            {"limit": -1},
            {"limit": "abc"},
        ):
            extensions = {"to_device": {"enabled": True, **to_device}}
            status, body = self.long_poll(SlidingSyncConsumer(), body={"extensions": extensions})
            self.assertEqual((status, body.get("errcode")), (400, "M_INVALID_PARAM"), to_device)
        extensions = {"to_device": {"enabled": True, "limit": 10**30}}
        status, body = self.long_poll(SlidingSyncConsumer(), body={"extensions": extensions})
        self.assertEqual((status, body.get("errcode")), (400, "M_BAD_JSON"))


class JsonBodiesTest(BadInputTestCase):
    """Every JSON body goes through one decoder: depth, NUL and lone surrogates."""

    def test_deeply_nested_body_is_bad_json(self) -> None:
        for depth in (200, 100_000):
            raw = ("[" * depth + "]" * depth).encode()
            nested = ('{"a":' * depth + "1" + "}" * depth).encode()
            for body in (raw, b'{"msgtype":"m.text","body":' + nested + b"}"):
                response = self.api(self.alice).request(
                    "PUT",
                    f"/_matrix/client/v3/rooms/{self.room}/send/m.room.message/t{depth}",
                    raw=body,
                )
                self.assert_400(response, ("M_BAD_JSON", "M_NOT_JSON"))

    def test_nul_in_json_bodies_is_bad_json(self) -> None:
        api = self.api(self.alice)
        cases = [
            ("PUT", f"/_matrix/client/v3/user/{self.me}/account_data/m.x", {"a": "b\u0000"}),
            ("PUT", f"/_matrix/client/v3/user/{self.me}/account_data/m.x", {"a\u0000": 1}),
            ("PUT", f"/_matrix/client/v3/profile/{self.me}/displayname", {"displayname": "a\0"}),
            ("POST", f"/_matrix/client/v3/user/{self.me}/filter", {"event_fields": ["\0"]}),
            (
                "PUT",
                "/_matrix/client/v3/sendToDevice/m.x/t1",
                {"messages": {self.alice.user_id: {"*": {"a": "\0"}}}},
            ),
            (
                "POST",
                "/_matrix/client/v3/room_keys/version",
                {"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "auth_data": {"k": "\0"}},
            ),
            (
                "POST",
                "/_matrix/client/v3/login",
                {
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": "alice\0"},
                    "password": "x",
                },
            ),
            ("PUT", f"/_matrix/client/v3/directory/room/{quote('#a:test')}", {"room_id": "!a\0"}),
        ]
        for method, path, body in cases:
            self.assert_400(api.request(method, path, body), ("M_BAD_JSON",))

    def test_lone_surrogate_in_account_data_is_refused_and_sync_still_works(self) -> None:
        raw = b'{"a": "\\ud800"}'
        path = f"/_matrix/client/v3/user/{self.me}/account_data/m.x"
        self.assert_400(self.api(self.alice).request("PUT", path, raw=raw), ("M_BAD_JSON",))
        self.sync(self.alice)


class PathsAndQueriesTest(BadInputTestCase):
    """NUL in a path or query parameter, and path parameters longer than their column."""

    def test_nul_in_path_parameters_is_invalid_param(self) -> None:
        nul = "%00"
        api = self.api(self.alice)
        paths = [
            ("PUT", f"/_matrix/client/v3/rooms/{self.room}/send/m.room.message/t{nul}"),
            ("PUT", f"/_matrix/client/v3/rooms/{self.room}/send/m.x{nul}/t1"),
            ("PUT", f"/_matrix/client/v3/rooms/{self.room}/state/m.x/a{nul}"),
            ("PUT", f"/_matrix/client/v3/directory/room/%23a{nul}%3Atest"),
            ("GET", f"/_matrix/client/v3/user/{self.me}/filter/1{nul}"),
            ("GET", f"/_matrix/client/v3/profile/%40a{nul}%3Atest"),
            ("PUT", f"/_matrix/client/v3/user/{self.me}/account_data/m.x{nul}"),
            ("GET", f"/_matrix/client/v3/rooms/{self.room}/messages?dir=b&from=s1{nul}"),
        ]
        for method, path in paths:
            body = {"room_id": self.room_id} if "directory" in path else {"body": "x"}
            response = api.request(method, path, body if method == "PUT" else None)
            self.assert_400(response, ("M_INVALID_PARAM",))

    def test_path_parameters_longer_than_their_column_are_refused(self) -> None:
        api = self.api(self.alice)
        room = f"/_matrix/client/v3/rooms/{self.room}"
        for path in (
            f"{room}/send/m.room.message/{'t' * 10_000}",
            f"{room}/send/m.{'x' * 254}/t1",
            f"{room}/state/m.x/{'k' * 256}",
            f"/_matrix/client/v3/user/{self.me}/account_data/{'m' * 10_000}",
            f"/_matrix/client/v3/sendToDevice/m.x/{'t' * 10_000}",
        ):
            self.assert_400(api.put(path, {}), ("M_INVALID_PARAM",))

    def test_path_parameters_of_the_longest_allowed_length_are_stored(self) -> None:
        api = self.api(self.alice)
        room = f"/_matrix/client/v3/rooms/{self.room}"
        longest = "x" * 255
        for path in (
            f"{room}/send/m.{'x' * 253}/{longest}",
            f"{room}/state/m.{'x' * 253}/{longest}",
            f"/_matrix/client/v3/user/{self.me}/account_data/{longest}",
        ):
            self.assertEqual(api.put(path, {}).status_code, 200, path)
        response = api.put(f"{room}/redact/{quote(self.last_event_id())}/{longest}", {})
        self.assertEqual(response.status_code, 200, response.body)

    def last_event_id(self) -> str:
        path = f"/_matrix/client/v3/rooms/{self.room}/messages?dir=b&limit=1"
        return str(self.api(self.alice).get(path).body["chunk"][0]["event_id"])


class FiltersTest(BadInputTestCase):
    def test_stored_filter_with_many_types_syncs(self) -> None:
        types = [f"m.type.{i}" for i in range(1500)]
        for room_filter in ({"timeline": {"types": types}}, {"timeline": {"not_types": types}}):
            created = self.api(self.alice).post(
                f"/_matrix/client/v3/user/{self.me}/filter", {"room": room_filter}
            )
            self.assertEqual(created.status_code, 200, created.body)
            self.sync(self.alice, filter=created.body["filter_id"])
            inline = quote(json.dumps(room_filter["timeline"]))
            path = f"/_matrix/client/v3/rooms/{self.room}/messages?dir=b&filter={inline}"
            self.assertEqual(self.api(self.alice).get(path).status_code, 200)


class HeadersTest(BadInputTestCase):
    def test_non_utf8_header_byte_on_long_polls_is_a_matrix_error(self) -> None:
        async def call(endpoint: Any, body: bytes) -> tuple[dict[str, Any], bytes]:
            from asgiref.testing import ApplicationCommunicator

            scope = {
                "type": "http",
                "method": "POST" if body else "GET",
                "path": "/",
                "query_string": b"",
                "headers": [(b"x-junk", b"\xff\xfe"), (b"user-agent", b"a\x80b")],
                "client": ("127.0.0.1", 1),
            }
            communicator = ApplicationCommunicator(endpoint, scope)
            await communicator.send_input({"type": "http.request", "body": body})
            start = await communicator.receive_output(timeout=5)
            message = await communicator.receive_output(timeout=5)
            return start, message["body"]

        for endpoint, body in ((SyncLongPollConsumer(), b""), (SlidingSyncConsumer(), b"{}")):
            start, raw = asyncio.run(call(endpoint, body))
            headers = dict(start["headers"])
            self.assertEqual(headers[b"Content-Type"], b"application/json")
            self.assertIn(start["status"], (400, 401), raw)
            self.assertIn("errcode", json.loads(raw))
