"""The client's address behind reverse proxies (MATRIXHS_TRUSTED_PROXIES).

When the connection comes from a trusted proxy, uvicorn's ProxyHeadersMiddleware puts
in the ASGI scope the rightmost X-Forwarded-For address that is not a trusted proxy (the
client the outermost proxy saw; entries to its left are whatever the client wrote) and
the scheme from X-Forwarded-Proto. It runs here, in front of every route (Django and the
long-polls alike), for either ASGI server; `manage.py serve` turns uvicorn's own copy
of it off, so the headers are read once.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware


class TrustedProxies:
    def __init__(self, app: Any) -> None:
        self.app = app
        self._middleware: dict[tuple[str, ...], ProxyHeadersMiddleware] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        proxies = tuple(settings.MATRIXHS_TRUSTED_PROXIES)
        if not proxies:
            await self.app(scope, receive, send)
            return
        middleware = self._middleware.get(proxies)
        if middleware is None:
            # Read per request so that tests can change the setting; built once per value.
            middleware = self._middleware[proxies] = ProxyHeadersMiddleware(
                self.app, trusted_hosts=list(proxies)
            )
        await middleware(scope, receive, send)
