"""Headless Chromium, for tests that look at a page as a person would.

Debian's `chromium` package driven by Playwright (never a browser download, which cannot work on
a machine without general internet access). Where it is not installed, the tests that need it skip.
"""

import shutil
from collections.abc import Iterator

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
