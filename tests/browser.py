"""Headless Chromium for end-to-end tests: Debian's ``/usr/bin/chromium`` driven
through playwright's sync API.

The sync API runs its own event loop in the calling thread, so a browser test
is a plain sync test (or calls in through ``anyio.to_thread``); the async API
would tie the test to asyncio.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed on exit. A missing browser is a failure,
    not a skip: ``.ci/run`` installs it."""
    assert CHROMIUM.exists(), "Debian's chromium is not installed (.ci/run installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
