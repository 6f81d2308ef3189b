"""Headless Chromium (Debian's `chromium` + `chromium-driver`, driven by selenium)
and a page server on its own origin serving player.html with the npm players.
Missing Chromium or the npm packages skip these tests, and fail them when
VTC_REQUIRE_SERVICES=1 (as in .ci/run, which installs both)."""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PLAYERS = {"hls.js": HERE / "node_modules/hls.js/dist/hls.min.js",
           "dash.js": HERE / "node_modules/dashjs/dist/modern/umd/dash.all.min.js"}
# Flags that keep a headless Chromium quiet and self-contained on this machine.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required", "--mute-audio")


def _missing(what: str) -> None:
    message = f"{what}; .ci/run installs it"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (VTC_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A selenium WebDriver on headless Chromium with a fresh profile."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(binary):
            _missing(f"{binary} is not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install -e '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


class _PageHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass


@pytest.fixture(scope="session")
def player_page() -> Iterator[str]:
    """The URL of player.html, served from 127.0.0.1 on a port of its own: another
    origin than the gateway's, so every media request is a cross-origin one."""
    for name, path in PLAYERS.items():
        if not path.is_file():
            _missing(f"{name} is not installed in {HERE / 'node_modules'} (npm ci --prefix tests/browser)")
    served = ("/player.html", "/node_modules/hls.js/", "/node_modules/dashjs/")
    handler = functools.partial(_PageHandler, directory=str(HERE))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _route(handler, served))
    thread = threading.Thread(target=server.serve_forever, name="player-page", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/player.html"
    finally:
        server.shutdown()
        server.server_close()


def _route(handler: functools.partial, served: tuple[str, ...]) -> functools.partial:
    """Only the page and the two players' folders: not the rest of the test tree."""

    class Only(handler.func):  # type: ignore[name-defined,misc]
        def send_head(self):  # type: ignore[no-untyped-def]
            path = self.path.split("?", 1)[0]
            if not any(path == p or (p.endswith("/") and path.startswith(p)) for p in served):
                self.send_error(404)
                return None
            return super().send_head()

    return functools.partial(Only, **handler.keywords)
