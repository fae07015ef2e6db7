"""Test support: spec validation of every response, and MatrixTestCase.

Every request made through :meth:`MatrixTestCase.api` is checked against the spec's
OpenAPI (tests/spec/, Matrix v1.19): a success must be a documented status whose body
validates against its schema; an error must be a standard Matrix error body, and also
validate where the spec documents that status for the endpoint.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

from django.contrib.auth.hashers import Argon2PasswordHasher
from django.test import Client, TestCase
from jsonschema import Draft202012Validator

from accounts.actions.devices import do_login_device
from accounts.actions.tokens import issue_tokens
from accounts.actions.users import do_register_user
from accounts.models import User

SPEC_DIR = Path(__file__).resolve().parent.parent / "tests" / "spec"

ERROR_SCHEMA = {
    "type": "object",
    "required": ["errcode", "error"],
    "properties": {"errcode": {"type": "string"}, "error": {"type": "string"}},
}


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with small costs, for tests only (the real one takes ~100 ms a hash)."""

    time_cost = 1
    memory_cost = 1024
    parallelism = 1


@contextmanager
def count_password_hashes() -> Iterator[list[str]]:
    """Record every Argon2 computation (hashing a new password or checking one) made in
    the block: what a password check costs, whoever the user is."""
    calls: list[str] = []
    encode, verify = FastArgon2PasswordHasher.encode, FastArgon2PasswordHasher.verify

    def counted_encode(self: Any, *args: Any) -> Any:
        calls.append("encode")
        return encode(self, *args)

    def counted_verify(self: Any, *args: Any) -> Any:
        calls.append("verify")
        return verify(self, *args)

    with (
        mock.patch.object(FastArgon2PasswordHasher, "encode", counted_encode),
        mock.patch.object(FastArgon2PasswordHasher, "verify", counted_verify),
    ):
        yield calls


@cache
def load_spec(api: str = "client-server") -> dict[str, Any]:
    return json.loads((SPEC_DIR / f"{api}.json").read_text())


@cache
def event_schemas() -> dict[str, Any]:
    return json.loads((SPEC_DIR / "event-schemas.json").read_text())


def spec_operation(method: str, path: str, api: str = "client-server") -> dict[str, Any] | None:
    """The operation a concrete path maps to: the template with fewest placeholders wins."""
    spec = load_spec(api)
    segs = path.split("?")[0].split("/")
    # The spec lists /v3/ paths; r0 is the same API under its old name.
    segs = ["v3" if (i == 3 and s == "r0") else s for i, s in enumerate(segs)]
    matches = []
    for template, item in spec["paths"].items():
        tsegs = template.strip().split("/")
        if method.lower() in item and len(tsegs) == len(segs):
            if all(a == b or a.startswith("{") for a, b in zip(tsegs, segs, strict=True)):
                matches.append((template.count("{"), template))
    if not matches:
        return None
    return spec["paths"][min(matches)[1]][method.lower()]  # type: ignore[no-any-return]


def _any_of(schema: Any) -> Any:
    """The schema with oneOf read as anyOf: the spec has oneOf alternatives that overlap
    (a state event is also "an object"), which strict oneOf would refuse."""
    if isinstance(schema, dict):
        return {("anyOf" if k == "oneOf" else k): _any_of(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_any_of(v) for v in schema]
    return schema


def _validate(schema: Any, body: Any) -> None:
    Draft202012Validator(_any_of(schema)).validate(body)


def assert_conforms(
    method: str, path: str, status: int, body: Any, api: str = "client-server"
) -> None:
    """Fail unless (status, body) is what the spec documents for this request.

    Errors the spec does not document for an endpoint (401 M_MISSING_TOKEN, 404
    M_UNRECOGNIZED, ...) must still be standard error bodies.
    """
    operation = spec_operation(method, path, api)
    documented = operation["responses"].get(str(status)) if operation is not None else None
    if documented is None:
        if status < 400:
            where = "an endpoint of" if operation is None else "a documented status in"
            raise AssertionError(f"{method} {path} {status} is not {where} the {api} spec")
        Draft202012Validator(ERROR_SCHEMA).validate(body)
        return
    schema = documented.get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        _validate(schema, body)
    elif status >= 400:
        Draft202012Validator(ERROR_SCHEMA).validate(body)


def assert_event_conforms(event: dict[str, Any]) -> None:
    """Validate an event against the spec's schema for its type (when there is one)."""
    schemas = event_schemas()
    schema = schemas.get(event["type"])
    if schema is not None:
        _validate(schema, event)


async def asgi_request(
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    client: tuple[str, int] = ("127.0.0.1", 1),
    query: str = "",
    timeout: float = 10,
) -> ApiResponse:
    """One request through the whole ASGI application (matrixhs.asgi), as a server would
    make it: proxies, body limit, the long-polls and Django. The answer is checked
    against the spec like :class:`ApiClient`'s."""
    from asgiref.testing import ApplicationCommunicator

    from matrixhs.asgi import application

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": client,
        "server": ("127.0.0.1", 8008),
    }
    communicator = ApplicationCommunicator(application, scope)
    data = json.dumps(body).encode() if body is not None else b""
    await communicator.send_input({"type": "http.request", "body": data})
    start = await communicator.receive_output(timeout=timeout)
    chunks = []
    while True:
        message = await communicator.receive_output(timeout=timeout)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await communicator.wait(timeout=timeout)
    raw = b"".join(chunks)
    parsed = json.loads(raw) if raw else None
    if path.startswith(("/_matrix/", "/.well-known/")):
        assert_conforms(method, path, start["status"], parsed)
    response_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return ApiResponse(start["status"], parsed, response_headers)


class ApiResponse:
    def __init__(self, status: int, body: Any, headers: Any) -> None:
        self.status_code = status
        self.body = body
        self.headers = headers

    def json(self) -> Any:
        return self.body


class MediaResponse(ApiResponse):
    def __init__(self, status: int, content: bytes, headers: Any, body: Any) -> None:
        super().__init__(status, body, headers)
        self.content = content


def assert_media_conforms(
    method: str, path: str, status: int, headers: Any, api: str = "client-server"
) -> None:
    """A non-JSON success: a documented status, a documented content type (by its
    family: application/octet-stream documents any), and every required header present
    with a value its schema allows."""
    operation = spec_operation(method, path, api)
    assert operation is not None, f"{method} {path} is not in the {api} spec"
    documented = operation["responses"].get(str(status))
    assert documented is not None, f"{method} {path} {status} is not documented"
    content_type = headers["Content-Type"].split(";")[0].strip()
    types = set(documented.get("content", {}))
    assert content_type in types or "application/octet-stream" in types, (
        f"{content_type} is not one of {sorted(types)}"
    )
    for name, spec in documented.get("headers", {}).items():
        if spec.get("required"):
            assert headers.get(name), f"{method} {path}: missing header {name}"
        if headers.get(name) is not None and "schema" in spec:
            value = headers[name].split(";")[0].strip() if name == "Content-Type" else headers[name]
            _validate(spec["schema"], value)


class ApiClient:
    """A client for one access token; every response is checked against the spec."""

    def __init__(self, client: Client, token: str | None, check_spec: bool = True) -> None:
        self.client = client
        self.token = token
        self.check_spec = check_spec

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> ApiResponse:
        headers = dict(headers or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs: dict[str, Any] = {"headers": headers}
        if data is not None:
            kwargs.update(data=data, content_type=content_type)
        response = self.client.generic(method, path, **kwargs)
        assert response["Content-Type"].startswith("application/json"), response.content[:200]
        parsed = json.loads(response.content) if response.content else None
        if self.check_spec and path.startswith(("/_matrix/", "/.well-known/")):
            assert_conforms(method, path, response.status_code, parsed)
        return ApiResponse(response.status_code, parsed, response)

    def get(self, path: str, headers: dict[str, str] | None = None) -> ApiResponse:
        return self.request("GET", path, headers=headers)

    def upload(
        self, path: str, data: bytes, content_type: str = "application/octet-stream", **kw: Any
    ) -> ApiResponse:
        """POST (or ``method=``) raw bytes, as a media upload does."""
        return self.request(kw.pop("method", "POST"), path, raw=data, content_type=content_type)

    def fetch(self, path: str, api: str = "client-server") -> MediaResponse:
        """GET a media body (download, thumbnail): the status and headers are checked
        against the spec, JSON error bodies too; the body streams and is joined here."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}
        response = self.client.get(path, headers=headers)
        if getattr(response, "streaming", False):
            # Media stream from an async iterator (for ASGI); the test client is sync.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "StreamingHttpResponse must consume")
                content = b"".join(response)
        else:
            content = response.content
        if response.status_code >= 400 or response["Content-Type"] == "application/json":
            body = json.loads(content)
            if self.check_spec:
                assert_conforms("GET", path, response.status_code, body, api)
            return MediaResponse(response.status_code, content, response, body)
        if self.check_spec:
            assert_media_conforms("GET", path, response.status_code, response, api)
        return MediaResponse(response.status_code, content, response, None)

    def post(self, path: str, body: Any = None, **kw: Any) -> ApiResponse:
        return self.request("POST", path, body if body is not None else {}, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> ApiResponse:
        return self.request("PUT", path, body if body is not None else {}, **kw)

    def delete(self, path: str, body: Any = None, **kw: Any) -> ApiResponse:
        return self.request("DELETE", path, body, **kw)


class MatrixTestCase(TestCase):
    """A test case with three users (alice, bob, mallory) who each have a device and token."""

    password = "correct horse battery staple"

    def setUp(self) -> None:
        super().setUp()
        self.alice = self.make_user("alice")
        self.bob = self.make_user("bob")
        self.mallory = self.make_user("mallory")

    def make_user(self, localpart: str, **kwargs: Any) -> User:
        user = do_register_user(localpart, self.password, **kwargs)
        device = do_login_device(user, None, "test device")
        user.test_device_id = device.device_id  # type: ignore[attr-defined]
        user.test_token = issue_tokens(user, device, with_refresh=False)["access_token"]  # type: ignore[attr-defined]
        return user

    def api(self, user: User | None = None, token: str | None = None) -> ApiClient:
        if user is not None:
            token = user.test_token  # type: ignore[attr-defined]
        return ApiClient(self.client, token)

    def sync(self, user: User, since: str | None = None, **params: str) -> dict[str, Any]:
        """GET /sync for ``user`` without waiting, run in this thread (the long-poll itself
        runs on request threads, which cannot see a test's uncommitted data), checked
        against the spec."""
        from urllib.parse import urlencode

        from sync.consumers import LongPollRequest, SyncLongPollConsumer

        query = {**params, **({"since": since} if since else {})}
        scope = {
            "method": "GET",
            "query_string": urlencode(query).encode(),
            "headers": [(b"authorization", f"Bearer {user.test_token}".encode())],  # type: ignore[attr-defined]
            "client": ("127.0.0.1", 1),
        }
        endpoint = SyncLongPollConsumer()
        request = LongPollRequest(scope, b"")
        status, body, _, _ = endpoint.compute(request, endpoint.prepare(request))
        assert_conforms("GET", "/_matrix/client/v3/sync", status, body)
        return body  # type: ignore[no-any-return]

    def assert_matrix_error(self, response: ApiResponse, status: int, errcode: str) -> None:
        self.assertEqual(
            (response.status_code, (response.body or {}).get("errcode")),
            (status, errcode),
            response.body,
        )
