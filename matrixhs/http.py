"""HTTP plumbing shared by every view: JSON bodies, strict schemas and the base view.

DRF is used as plumbing only (STYLE 3.5): views subclass :class:`MatrixView`, read their
body with :func:`parse_json_object` or :func:`parse_body`, and return plain dicts in a
``Response``. Authentication, guest checks and rate limits happen in
:meth:`MatrixView.initial`; errors are :class:`~matrixhs.errors.MatrixError`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from matrixhs import auth, ratelimit
from matrixhs.errors import (
    BadJson,
    Codes,
    Forbidden,
    InvalidParam,
    JsonDict,
    MissingParam,
    NotJson,
    TooLarge,
    UserSuspended,
)
from matrixhs.protocol.ids import (
    InvalidIdentifier,
    parse_event_id,
    parse_room_alias,
    parse_room_id,
    parse_user_id,
)

#: How deeply a request's JSON may nest. Matrix content is shallow; deeper values only
#: cost recursion in every later step (encoding, signing, the database's JSON).
MAX_JSON_DEPTH = 64
#: Integers past this lose precision in other servers and clients (canonical JSON's range).
MAX_JSON_INT = 2**53 - 1
#: What no string may hold: NUL (PostgreSQL text cannot store it) and lone surrogates
#: (UTF-8 cannot encode them; the decoder joins the valid pairs).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def loads_strict(raw: bytes | str) -> Any:
    """Decode JSON as requests carry it, refusing what JSON or Matrix do not allow: NaN and
    Infinity (not JSON), nesting past MAX_JSON_DEPTH, integers past MAX_JSON_INT, numbers
    too large for a float, and strings (keys too) with NUL or lone surrogates.

    Raises:
        ValueError: not JSON.
        BadJson: JSON, but holding what no request may hold.
    """
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise BadJson(f"JSON may nest at most {MAX_JSON_DEPTH} levels deep") from exc
    _check_storable(value)
    return value


def _check_storable(value: Any) -> None:
    """Walk a decoded value without recursion (see :func:`loads_strict`)."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                raise BadJson("Strings may not contain NUL characters or lone surrogates")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_JSON_INT:
                raise BadJson(f"Integers must be within ±{MAX_JSON_INT}")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise BadJson("Numbers must be finite")
        elif depth >= MAX_JSON_DEPTH:
            raise BadJson(f"JSON may nest at most {MAX_JSON_DEPTH} levels deep")
        elif isinstance(item, dict):
            pending.extend((key, depth) for key in item)
            pending.extend((child, depth + 1) for child in item.values())
        else:
            pending.extend((child, depth + 1) for child in item)


def raw_body(request: HttpRequest | Request) -> bytes:
    """The request body, or 413 M_TOO_LARGE past DATA_UPLOAD_MAX_MEMORY_SIZE."""
    try:
        return request.body
    except RequestDataTooBig as exc:
        raise TooLarge() from exc


def parse_json_object(request: HttpRequest | Request, allow_empty: bool = False) -> JsonDict:
    """The body as a JSON object, whatever the Content-Type (it is optional per spec).

    Raises:
        NotJson: the body is not JSON (or is empty and that is not allowed).
        BadJson: the body is JSON but not an object.
        TooLarge: the body is over the limit.
    """
    return parse_json_bytes(raw_body(request), allow_empty)


def parse_json_bytes(body: bytes, allow_empty: bool = False) -> JsonDict:
    """A request body as a JSON object (see :func:`parse_json_object`)."""
    if not body.strip():
        if allow_empty:
            return {}
        raise NotJson("Content not JSON.")
    try:
        value = loads_strict(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotJson("Content not JSON.") from exc
    if not isinstance(value, dict):
        raise BadJson("Content must be a JSON object.")
    return value


# --- Strict fields: JSON types are not coerced ("1" is not 1, 1 is not true) ---------------


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)  # type: ignore[no-any-return]


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)  # type: ignore[no-any-return]


class JsonObjectField(serializers.Field):
    """Any JSON object, kept as is."""

    default_error_messages = {"invalid": "Must be a JSON object."}

    def to_internal_value(self, data: Any) -> JsonDict:
        if not isinstance(data, dict):
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class StringListField(serializers.ListField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=StrictCharField(allow_blank=True), **kwargs)


def parse_body(schema: type[serializers.Serializer], request: Request, **kw: Any) -> JsonDict:
    """Parse the JSON body and check its shape against a plain serializer.

    Raises:
        MissingParam: a required field is absent.
        BadJson: a field has the wrong type.
        InvalidParam: a field has a value the schema refuses (fields with "invalid_param").
    """
    return validate(schema, parse_json_object(request, **kw))


def validate(schema: type[serializers.Serializer], data: JsonDict) -> JsonDict:
    """Check ``data`` with ``schema``; see :func:`parse_body` for the errors."""
    serializer = schema(data=data)
    if serializer.is_valid():
        return dict(serializer.validated_data)
    raise _schema_error(serializer.errors)


def _schema_error(errors: Any, path: str = "") -> BadJson | MissingParam | InvalidParam:
    """Turn the first serializer error into a Matrix error naming the field."""
    for field, detail in errors.items():
        name = f"{path}.{field}" if path and field != "non_field_errors" else (path or field)
        if isinstance(detail, dict):
            return _schema_error(detail, name)
        first = detail[0] if isinstance(detail, list) and detail else detail
        if isinstance(first, dict):
            return _schema_error(first, name)
        code = getattr(first, "code", "invalid")
        if code == "required":
            return MissingParam(f"Missing parameter: {name}")
        if code == "invalid_param":
            return InvalidParam(f"{name}: {first}")
        return BadJson(f"Invalid parameter {name}: {first}")
    return BadJson("Invalid request body")


# --- Identifiers from paths and bodies: parsed once, at the boundary ---------------------


def _parsed(parse: Callable[[str], str], value: object, what: str) -> str:
    try:
        if not isinstance(value, str):
            raise InvalidIdentifier(f"{what} must be a string")
        return parse(value)
    except InvalidIdentifier as exc:
        raise InvalidParam(f"Invalid {what}: {exc}") from exc


def user_id_param(value: object, what: str = "user ID") -> str:
    """Raises: InvalidParam: not a user ID."""
    return _parsed(parse_user_id, value, what)


def room_id_param(value: object) -> str:
    """Raises: InvalidParam: not a room ID."""
    return _parsed(parse_room_id, value, "room ID")


def event_id_param(value: object) -> str:
    """Raises: InvalidParam: not an event ID."""
    return _parsed(parse_event_id, value, "event ID")


def alias_param(value: object) -> str:
    """Raises: InvalidParam: not a room alias."""
    return _parsed(parse_room_alias, value, "room alias")


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter: true/false only.

    Raises:
        InvalidParam: any other value.
    """
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw in ("true", "false"):
        return raw == "true"
    raise InvalidParam(f"Query parameter {name} must be true or false")


#: An integer in a query parameter: ASCII digits (``int`` also takes "²", "1_0" and
#: spaces), few enough to fit a 64-bit database integer.
_QUERY_INT = re.compile(r"-?[0-9]{1,18}", re.ASCII)


def query_int(request: Request, name: str, default: int, minimum: int = 0) -> int:
    """An integer query parameter.

    Raises:
        InvalidParam: not an integer, or below ``minimum``.
    """
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _QUERY_INT.fullmatch(raw):
        raise InvalidParam(f"Query parameter {name} must be an integer")
    value = int(raw)
    if value < minimum:
        raise InvalidParam(f"Query parameter {name} must be at least {minimum}")
    return value


#: The longest path parameter, in UTF-8 bytes: the spec's limit for IDs, event types and
#: state keys, and the size of every column a path parameter is stored in.
MAX_PATH_PARAM_BYTES = 255


def check_parameters(
    path_params: dict[str, Any], query: Any, unbounded: tuple[str, ...] = ()
) -> None:
    """Refuse what no parameter may hold: NUL (PostgreSQL text cannot store it), a lone
    surrogate, or a path parameter past MAX_PATH_PARAM_BYTES (except those named in
    ``unbounded``, whose view answers the spec's own error). ``query`` maps names to a
    value or to a list of values (a QueryDict, or a plain dict).

    Raises:
        InvalidParam: one does.
    """
    for name, value in path_params.items():
        if not isinstance(value, str):
            continue
        if _UNSTORABLE.search(value):
            raise InvalidParam(f"{name} may not contain NUL characters or lone surrogates")
        if name not in unbounded and len(value.encode("utf-8")) > MAX_PATH_PARAM_BYTES:
            raise InvalidParam(f"{name} is longer than {MAX_PATH_PARAM_BYTES} bytes")
    lists = query.lists() if hasattr(query, "lists") else query.items()
    for name, values in lists:
        for value in [name, *(values if isinstance(values, list) else [values])]:
            if _UNSTORABLE.search(value):
                raise InvalidParam("Query parameters may not contain NUL characters")


class MatrixView(APIView):
    """Base of every client API view.

    Class attributes:
        requires_auth: a valid access token is needed (else 401 M_MISSING_TOKEN).
        anonymous_methods: HTTP methods that need no token even so (a token, if given,
            must still be valid).
        allow_guests: guest accounts may call it (else 403 M_GUEST_ACCESS_FORBIDDEN): True,
            or the HTTP methods they may call. The spec's "Guest access" module lists
            the endpoints guests may use.
        rate_limit: the rate-limit bucket, or None for no limit.
        unbounded_path_params: path parameters the view checks the length of itself
            (else over MAX_PATH_PARAM_BYTES is 400 M_INVALID_PARAM).
        allow_locked: a locked account may call it (logout); else 401 M_USER_LOCKED.
        suspended_refused: HTTP methods a suspended account may not call (403
            M_USER_SUSPENDED): the spec's "Account suspension" lists what they are.
    """

    requires_auth = True
    anonymous_methods: tuple[str, ...] = ()
    allow_guests: bool | tuple[str, ...] = False
    rate_limit: str | None = "client"
    #: False: the endpoint is not the client API's, an ``access_token`` there is not ours
    #: to check (the OpenID userinfo lookup).
    client_tokens = True
    unbounded_path_params: tuple[str, ...] = ()
    allow_locked = False
    suspended_refused: tuple[str, ...] = ()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        check_parameters(kwargs, request.query_params, self.unbounded_path_params)
        required = self.requires_auth and request.method not in self.anonymous_methods
        requester = (
            auth.authenticate(request, required=required, allow_locked=self.allow_locked)
            if self.client_tokens
            else None
        )
        request.requester = requester  # type: ignore[attr-defined]
        if requester is not None and requester.is_guest and not self.guests_may(request):
            raise Forbidden("Guest access is not allowed here", Codes.GUEST_ACCESS_FORBIDDEN)
        if (
            requester is not None
            and requester.user.suspended
            and self.refused_when_suspended(request, kwargs)
        ):
            raise UserSuspended()
        if self.rate_limit is not None:
            key = requester.user_id if requester is not None else None
            self.rate_state = ratelimit.check(self.rate_limit, request, key)

    def refused_when_suspended(self, request: Request, kwargs: dict[str, Any]) -> bool:
        return request.method in self.suspended_refused

    def guests_may(self, request: Request) -> bool:
        if isinstance(self.allow_guests, bool):
            return self.allow_guests
        return request.method in self.allow_guests

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        state = getattr(self, "rate_state", None)
        if state is not None:
            response["X-RateLimit-Limit"] = str(state.limit)
            response["X-RateLimit-Remaining"] = str(state.remaining)
        return response
