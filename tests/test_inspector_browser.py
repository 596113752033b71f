"""The inspector page in headless Chromium against a real uvicorn: streams
the test opens appear, their bytes grow, selecting one draws its message
flow, and a closed one leaves the table for the outcome counts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from playwright.sync_api import Page, expect

from tests.apps.observed import app
from tests.browser import chromium
from tests.servers import UvicornThread


@contextmanager
def open_stream(url: str) -> Iterator[threading.Event]:
    """Read ``url`` in a thread until the returned event is set, then leave."""
    opened, leave = threading.Event(), threading.Event()

    def read() -> None:
        with httpx.Client(timeout=10) as client, client.stream("GET", url) as response:
            for _ in response.iter_bytes():
                opened.set()
                if leave.is_set():
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert opened.wait(10), f"{url} did not start"
    try:
        yield leave
    finally:
        leave.set()
        reader.join(10)


def bytes_of(page: Page, route: str) -> int:
    row = page.locator("#open tbody tr", has_text=route)
    return int(row.locator("td.bytes").inner_text())


def test_the_inspector_shows_streams_live() -> None:
    with UvicornThread(app) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        with open_stream(server.url + "/ticks?pace=0.05"), \
                open_stream(server.url + "/endless?pace=0.05") as leave_endless:
            page.goto(server.url + "/inspector/")
            expect(page.locator("#connection")).to_have_text("live")
            rows = page.locator("#open tbody tr")
            expect(rows).to_have_count(2)
            expect(rows.filter(has_text="/ticks")).to_have_count(1)
            # The ticker's bytes grow from one snapshot to a later one.
            before = bytes_of(page, "/ticks")
            page.wait_for_function(
                """before => [...document.querySelectorAll('#open tbody tr')]
                     .some(r => r.textContent.includes('/ticks') &&
                                Number(r.querySelector('td.bytes').textContent) > before)""",
                arg=before, timeout=10_000)
            # Selecting a stream draws its ASGI messages.
            rows.filter(has_text="/ticks").click()
            expect(page.locator("#timeline-title")).to_contain_text("/ticks")
            dots = page.locator("#timeline circle.message")
            expect(dots.first).to_be_visible()
            assert page.locator("#timeline circle[data-type='http.response.start']").count() == 1
            assert dots.count() > 3
            # The endless stream's client leaves: it moves to the outcome counts.
            leave_endless.set()
            expect(rows).to_have_count(1)
            expect(page.locator("#outcomes li[data-reason='client_disconnected'] b")
                   ).to_have_text("1")
            expect(page.locator("#recent tbody tr", has_text="/endless")).to_have_count(1)
