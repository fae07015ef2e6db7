"""An ASGI wrapper that refuses request bodies over the limit before anything reads them.

Django's ASGI handler spools the whole body before a view runs, so the limit must be
enforced in front of it: on Content-Length when there is one, else while streaming.
Some paths (media uploads) have a limit of their own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_CORS = [(b"access-control-allow-origin", b"*")]


async def send_json_error(send: Send, status: int, errcode: str, error: str) -> None:
    body = json.dumps({"errcode": errcode, "error": error}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + _CORS})
    await send({"type": "http.response.body", "body": body})


class RequestBodyLimit:
    """Args: ``limit`` for every path but those matching a regex of ``path_limits``."""

    def __init__(
        self, app: ASGIApp, limit: int, path_limits: list[tuple[str, int]] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.path_limits = [(re.compile(regex), size) for regex, size in path_limits or []]

    def limit_for(self, path: str) -> int:
        for regex, size in self.path_limits:
            if regex.match(path):
                return size
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_json_error(send, 400, "M_UNKNOWN", "Invalid Content-Length")
                return
            if int(declared) > limit:
                await send_json_error(send, 413, "M_TOO_LARGE", "Request body too large")
                return
        received = 0
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not rejected:
                    rejected = True
                    await send_json_error(send, 413, "M_TOO_LARGE", "Request body too large")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not rejected:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)
