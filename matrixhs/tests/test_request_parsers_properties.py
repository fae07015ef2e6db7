"""Property: no request makes the server answer 500, whatever its JSON body, tokens,
filters, identifiers or query parameters (the request parsers), on either database.

Each parser gets its own test, run through the real views (or, for the /sync long-polls,
their code in this thread). The number of examples comes from the Hypothesis profile
(conftest.py): a few dozen by default, 10,000 per test with HYPOTHESIS_PROFILE=thorough.
Each example runs in a savepoint, so one that broke the database transaction would not
hide the next.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from django.db import transaction
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from matrixhs.errors import render_error
from matrixhs.testing import MatrixTestCase
from sync.consumers import LongPollRequest, SlidingSyncConsumer, SyncLongPollConsumer

#: Characters that have tripped parsers: NUL, lone surrogates, non-ASCII digits, and the
#: separators of our tokens and identifiers.
AWKWARD = st.sampled_from(
    ["\x00", "\ud800", "\udfff", "²", "٣", "-", "_", "~", ".", ":", "%", "*", "?", "[", "\\"]
)
TEXT = st.text(st.one_of(st.characters(), AWKWARD), max_size=40)
LONG_TEXT = st.integers(200, 12_000).map(lambda n: "x" * n)
NUMBER = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.text(st.sampled_from("0123456789²٣ -_+"), min_size=1, max_size=25),
)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    TEXT,
)
JSON = st.recursive(
    SCALAR,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(TEXT, children, max_size=5)
    ),
    max_leaves=20,
)


def _quote(text: str) -> str:
    """A path segment; a lone surrogate goes as the bytes a client would send for it."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _query(params: dict[str, str]) -> str:
    return urlencode(params, encoding="utf-8", errors="surrogatepass")


def _nested(depth: int) -> bytes:
    return ('{"a":' * depth + "1" + "}" * depth).encode()


BODY = st.one_of(
    JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=100),
    st.integers(1, 5_000).map(_nested),
    st.integers(1, 5_000).map(lambda d: b"[" * d + b"]" * d),
)
TOKEN = st.one_of(
    TEXT,
    LONG_TEXT,
    st.tuples(st.sampled_from(["s", "t", "th", "o", ""]), st.lists(NUMBER, max_size=8)).map(
        lambda t: t[0] + "_".join(t[1])
    ),
    st.tuples(NUMBER, NUMBER).map(lambda t: f"s0_0_0_0_0_0_0~{t[0]}.{t[1]}"),
)
FILTER_LIST = st.one_of(st.lists(st.one_of(TEXT, st.just("*")), max_size=4), JSON)
EVENT_FILTER = st.fixed_dictionaries(
    {},
    optional={
        "limit": st.one_of(st.integers(-5, 2**60), SCALAR),
        "types": FILTER_LIST,
        "not_types": FILTER_LIST,
        "senders": FILTER_LIST,
        "not_senders": FILTER_LIST,
        "rooms": FILTER_LIST,
        "not_rooms": FILTER_LIST,
        "contains_url": SCALAR,
        "lazy_load_members": SCALAR,
    },
)
FILTER = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {},
        optional={
            "event_fields": FILTER_LIST,
            "event_format": st.one_of(st.sampled_from(["client", "federation"]), SCALAR),
            "presence": EVENT_FILTER,
            "account_data": EVENT_FILTER,
            "room": st.fixed_dictionaries(
                {},
                optional={
                    "rooms": FILTER_LIST,
                    "include_leave": SCALAR,
                    "timeline": EVENT_FILTER,
                    "state": EVENT_FILTER,
                    "ephemeral": EVENT_FILTER,
                    "account_data": EVENT_FILTER,
                },
            ),
        },
    ),
)
IDENTIFIER = st.one_of(
    TEXT,
    LONG_TEXT,
    st.tuples(st.sampled_from("@!#$"), TEXT, st.sampled_from(["", ":"]), TEXT).map("".join),
)


JSON_TARGETS = [
    ("PUT", "/user/{me}/account_data/m.fuzz"),
    ("PUT", "/user/{me}/rooms/{room}/account_data/m.fuzz"),
    ("PUT", "/rooms/{room}/send/m.fuzz/{txn}"),
    ("PUT", "/rooms/{room}/state/m.fuzz/k"),
    ("PUT", "/profile/{me}/displayname"),
    ("PUT", "/sendToDevice/m.fuzz/{txn}"),
    ("POST", "/room_keys/version"),
    ("POST", "/login"),
    ("POST", "/keys/upload"),
    ("POST", "/keys/query"),
    ("PUT", "/directory/room/%23fuzz%3Atest.local"),
    ("POST", "/user/{me}/filter"),
    ("POST", "/rooms/{room}/receipt/m.read/{event}"),
    ("PUT", "/pushrules/global/override/fuzz"),
]
ID_TARGETS = [
    ("GET", "/profile/{id}"),
    ("GET", "/rooms/{id}/state"),
    ("GET", "/directory/room/{id}"),
    ("PUT", "/directory/room/{id}"),
    ("GET", "/rooms/{room}/event/{id}"),
    ("GET", "/rooms/{room}/state/{id}/{other}"),
    ("PUT", "/rooms/{room}/state/{id}/{other}"),
    ("PUT", "/rooms/{room}/send/{id}/{other}"),
    ("PUT", "/rooms/{room}/redact/{id}/{other}"),
    ("GET", "/user/{me}/filter/{id}"),
    ("GET", "/user/{id}/account_data/{other}"),
    ("PUT", "/user/{me}/account_data/{id}"),
    ("POST", "/rooms/{room}/invite"),
    ("POST", "/join/{id}"),
    ("PUT", "/sendToDevice/{id}/{other}"),
    ("GET", "/room_keys/version/{id}"),
    ("POST", "/rooms/{room}/receipt/m.read/{id}"),
]
QUERY_NAMES = [
    *("limit", "dir", "from", "to", "timeout", "since", "filter", "full_state"),
    *("set_presence", "server", "include", "recurse", "membership", "at"),
]


# No request may reach another server from here (publicRooms?server=... would).
@override_settings(MATRIXHS_FEDERATION_ENABLED=False)
class RequestParsersPropertiesTest(MatrixTestCase):
    def setUp(self) -> None:
        super().setUp()
        created = self.api(self.alice).post("/_matrix/client/v3/createRoom", {"name": "r"})
        self.room_id = created.body["room_id"]
        self.room = quote(self.room_id)
        self.me = quote(self.alice.user_id)
        sent = self.api(self.alice).put(
            f"/_matrix/client/v3/rooms/{self.room}/send/m.room.message/t0",
            {"msgtype": "m.text", "body": "hi"},
        )
        self.event_id = sent.body["event_id"]

    # --- helpers --------------------------------------------------------------------------

    def request(self, method: str, path: str, body: bytes | None = None) -> Any:
        """One request in a savepoint; fails on a 500 or a non-Matrix error."""
        with transaction.atomic():
            kwargs: dict[str, Any] = {
                "headers": {"Authorization": f"Bearer {self.alice.test_token}"}  # type: ignore[attr-defined]
            }
            if body is not None:
                kwargs.update(data=body, content_type="application/json")
            response = self.client.generic(method, path, **kwargs)
            self.assert_matrix_answer(response.status_code, response.content, (method, path))
            return json.loads(response.content)

    def long_poll(self, endpoint: Any, query: dict[str, str], body: bytes = b"") -> None:
        scope = {
            "method": "POST" if body else "GET",
            "query_string": _query(query).encode(),
            "headers": [(b"authorization", f"Bearer {self.alice.test_token}".encode())],  # type: ignore[attr-defined]
            "client": ("127.0.0.1", 1),
        }
        with transaction.atomic():
            try:
                request = LongPollRequest(scope, body)
                request.timeout_ms()
                status, answer, _, _ = endpoint.compute(request, endpoint._prepare(request))
            except Exception as exc:
                status, answer, _ = render_error(exc)
            content = json.dumps(answer).encode()
            self.assert_matrix_answer(status, content, (query, body[:200]))

    def assert_matrix_answer(self, status: int, content: bytes, what: Any) -> None:
        self.assertLess(status, 500, (what, content[:300]))
        if status >= 400:
            self.assertIn("errcode", json.loads(content), (what, content[:300]))

    # --- the parsers: each a Hypothesis test run inside one test method (setUp's users and
    # room serve every example), each example one request to one of the parser's users --

    def test_json_bodies_never_answer_500(self) -> None:
        @given(body=BODY, target=st.sampled_from(JSON_TARGETS))
        def check(body: bytes, target: tuple[str, str]) -> None:
            method, template = target
            path = "/_matrix/client/v3" + template.format(
                me=self.me, room=self.room, txn=f"t{hash(body)}", event=quote(self.event_id)
            )
            self.request(method, path, body)
            if template == "/user/{me}/account_data/m.fuzz":  # stored: it reads back, syncs
                self.request("GET", path)
                self.long_poll(SyncLongPollConsumer(), {})

        check()

    def test_tokens_never_answer_500(self) -> None:
        @given(token=TOKEN, other=TOKEN, target=st.integers(0, 7))
        def check(token: str, other: str, target: int) -> None:
            base = "/_matrix/client"
            room = f"{base}/v3/rooms/{self.room}"
            relations = f"{base}/v1/rooms/{self.room}/relations/{quote(self.event_id)}"
            paths = [
                f"{room}/messages?{_query({'dir': 'b', 'from': token, 'to': other})}",
                f"{base}/v3/keys/changes?{_query({'from': token, 'to': other})}",
                f"{base}/v1/rooms/{self.room}/threads?{_query({'from': token})}",
                f"{relations}?{_query({'from': token, 'to': other})}",
                f"{base}/v3/publicRooms?{_query({'since': token})}",
                f"{base}/v3/notifications?{_query({'from': token})}",
            ]
            if target < len(paths):
                self.request("GET", paths[target])
            elif target == len(paths):
                self.long_poll(SyncLongPollConsumer(), {"since": token})
            else:
                sliding = {"extensions": {"to_device": {"enabled": True, "since": other}}}
                body = json.dumps(sliding).encode()
                self.long_poll(SlidingSyncConsumer(), {"pos": token}, body)

        check()

    def test_filters_never_answer_500(self) -> None:
        @given(definition=FILTER, inline=EVENT_FILTER, target=st.integers(0, 2))
        def check(definition: Any, inline: Any, target: int) -> None:
            v3 = "/_matrix/client/v3"
            if target == 0:  # stored, then used
                body = json.dumps(definition).encode()
                created = self.request("POST", f"{v3}/user/{self.me}/filter", body)
                if "filter_id" in created:
                    self.long_poll(SyncLongPollConsumer(), {"filter": created["filter_id"]})
            elif target == 1:
                self.long_poll(SyncLongPollConsumer(), {"filter": json.dumps(definition)})
            else:
                query = _query({"dir": "b", "filter": json.dumps(inline)})
                self.request("GET", f"{v3}/rooms/{self.room}/messages?{query}")

        check()

    def test_identifiers_never_answer_500(self) -> None:
        @given(identifier=IDENTIFIER, other=IDENTIFIER, target=st.sampled_from(ID_TARGETS))
        def check(identifier: str, other: str, target: tuple[str, str]) -> None:
            method, template = target
            path = "/_matrix/client/v3" + template.format(
                me=self.me, room=self.room, id=_quote(identifier), other=_quote(other)
            )
            body = json.dumps({"user_id": identifier, "messages": {}}).encode()
            self.request(method, path, body if method != "GET" else None)

        check()

    def test_query_parameters_never_answer_500(self) -> None:
        names = st.one_of(st.sampled_from(QUERY_NAMES), TEXT)
        values = st.one_of(TEXT, NUMBER, LONG_TEXT)

        @given(params=st.dictionaries(names, values, max_size=4), target=st.integers(0, 9))
        def check(params: dict[str, str], target: int) -> None:
            v3 = "/_matrix/client/v3"
            room = f"{v3}/rooms/{self.room}"
            paths = [
                f"{room}/messages",
                f"{room}/members",
                f"{room}/context/{quote(self.event_id)}",
                f"/_matrix/client/v1/rooms/{self.room}/relations/{quote(self.event_id)}",
                f"{v3}/publicRooms",
                f"{v3}/notifications",
                f"{v3}/keys/changes",
                f"{v3}/user/{self.me}/filter/0",
            ]
            if target < len(paths):
                self.request("GET", f"{paths[target]}?{_query(params)}")
            elif target == len(paths):
                self.long_poll(SyncLongPollConsumer(), params)
            else:
                self.long_poll(SlidingSyncConsumer(), params, b"{}")

        check()
