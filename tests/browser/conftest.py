"""Browser tests: Element Web and the Django admin in Debian's Chromium, driven by
Playwright for Python, against the real server process (``manage.py serve``).

They run with ``scripts/browser-tests`` (the default test run leaves them out: see the
root conftest). Element Web comes prebuilt from ``shared/element-web/`` beside the
checkout, or from MATRIXHS_ELEMENT_WEB_TARBALL; Chromium from CHROMIUM
(default /usr/bin/chromium).
"""

from __future__ import annotations

import json
import os
import tarfile
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    Route,
    expect,
    sync_playwright,
)

from tests.e2e.server import ROOT, RunningServer

#: Element's default timeout for UI steps (ms): long enough for a loaded CI machine.
STEP_TIMEOUT_MS = 30_000
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
expect.set_options(timeout=STEP_TIMEOUT_MS)
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def element_tarball() -> Path:
    configured = os.environ.get("MATRIXHS_ELEMENT_WEB_TARBALL")
    if configured:
        return Path(configured)
    for shared in (ROOT.parent / "shared", ROOT.parents[1] / "shared"):
        found = sorted((shared / "element-web").glob("element-web-*.tar.xz"))
        if found:
            return found[-1]
    raise FileNotFoundError(
        "Element Web not found: set MATRIXHS_ELEMENT_WEB_TARBALL or put shared/element-web/ "
        "beside the checkout"
    )


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def homeserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The server, named ``localhost`` (user IDs ``@name:localhost``), registration open."""
    server = RunningServer(tmp_path_factory.mktemp("hs"), server_name="localhost")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def element_url(
    tmp_path_factory: pytest.TempPathFactory, homeserver: RunningServer
) -> Iterator[str]:
    """Element Web served on 127.0.0.1, its config.json pointing at the server."""
    root = tmp_path_factory.mktemp("element")
    with tarfile.open(element_tarball()) as archive:
        archive.extractall(root, filter="data")
    webapp = root / "webapp"
    config = {
        "default_server_config": {
            "m.homeserver": {"base_url": homeserver.base_url, "server_name": "localhost"}
        },
        "disable_guests": True,
        "show_labs_settings": False,
        "default_theme": "light",
        "disable_3pid_login": True,
    }
    (webapp / "config.json").write_text(json.dumps(config))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(webapp)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(
        executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
        args=CHROMIUM_FLAGS,
        headless=True,
    )
    try:
        yield chromium
    finally:
        chromium.close()


def _loopback_only(route: Route) -> None:
    """The client never reaches the internet: requests elsewhere are aborted."""
    host = urlparse(route.request.url).hostname or ""
    if host in LOOPBACK_HOSTS or route.request.url.startswith(("data:", "blob:")):
        route.continue_()
    else:
        route.abort()


@pytest.fixture
def new_page(
    browser: Browser, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], Page]]:
    """Pages in fresh browser contexts (a profile per user); a screenshot of each is kept
    in the test's tmp dir when the test fails."""
    contexts: list[tuple[str, BrowserContext, Page]] = []

    def make(name: str) -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(STEP_TIMEOUT_MS)
        context.route("**/*", _loopback_only)
        page = context.new_page()
        contexts.append((name, context, page))
        return page

    yield make
    failed = getattr(request.node, "failed", False)
    for name, context, page in contexts:
        if failed:
            page.screenshot(path=str(tmp_path / f"{name}.png"))
            print(f"screenshot: {tmp_path / f'{name}.png'}")
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if report.when == "call" and report.failed:  # type: ignore[attr-defined]
        item.failed = True  # type: ignore[attr-defined]
    return report
