"""Headless Chromium, for tests that look at a page as a person would.

Debian's `chromium` package driven by Playwright (never a browser download, which cannot work on
a machine without general internet access). Where it is not installed, the tests that need it skip.
"""

import contextlib
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

CHROMIUM = shutil.which("chromium")
INSTALL_HINT = "needs Debian's chromium (apt-get install -y chromium)"
# As root Chromium needs --no-sandbox; the rest keep it from calling home on a closed network.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A Playwright Browser on the system Chromium; skips the test where there is none."""
    if CHROMIUM is None:
        pytest.skip(INSTALL_HINT)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def page_on(browser, server) -> Iterator[object]:
    """A fresh page on `server`; `page.outside` lists requests to anywhere else (refused)."""
    context = browser.new_context()
    page = context.new_page()
    page.outside = []
    page.console_errors = []
    origin = urlsplit(server.url).netloc

    def only_the_server(route):
        if urlsplit(route.request.url).netloc == origin:
            route.continue_()
        else:
            page.outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_server)
    page.on(
        "console",
        lambda message: message.type == "error" and page.console_errors.append(message.text),
    )
    page.goto(server.url)
    try:
        yield page
    finally:
        context.close()
