"""A real HTTP server on 127.0.0.1 for tests of outbound requests (previews, the address
filter, push gateways). Routes are plain functions; each response closes its
connection, so every request opens a new one (and goes through the connect-time check
again). POST requests are recorded with their bodies (``requests``) before the route
answers them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: (status, headers, body); a body may be an iterator of chunks (written as they come).
Reply = tuple[int, dict[str, str], bytes | Iterator[bytes]]
Route = Callable[[], Reply]


class LocalServer:
    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.hits: dict[str, int] = {}
        #: (path, body) of every POST, in the order they came.
        self.requests: list[tuple[str, bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                route = server.routes.get(path)
                status, headers, body = route() if route else (404, {}, b"not found")
                self.send_response(status)
                for name, value in {"Connection": "close", **headers}.items():
                    self.send_header(name, value)
                if isinstance(body, bytes):
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.end_headers()
                try:
                    for chunk in body:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append((self.path.split("?")[0], body))
                self.do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # a slow reply must not hold up the test
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@contextmanager
def local_server(routes: dict[str, Route]) -> Iterator[LocalServer]:
    server = LocalServer(routes)
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(timeout=5)


def slow_body(seconds: float, chunks: int = 10) -> Iterator[bytes]:
    """A body that trickles for ``seconds`` (bounded)."""
    for _ in range(chunks):
        time.sleep(seconds / chunks)
        yield b"<p>slow</p>"
