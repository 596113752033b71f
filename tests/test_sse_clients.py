"""Real clients on our event streams, against a real uvicorn: httpx-sse resumes
the ticker with ``Last-Event-ID``, and headless Chromium's ``EventSource``
reconnects by itself after the server ends the stream mid-way (WHATWG HTML
9.2.3: the browser waits ``retry`` ms, then reconnects with the last id)."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest
from httpx_sse import aconnect_sse

from examples.app import build_demo_app
from examples.sse_events import SSEDemo
from tests.browser import chromium
from tests.servers import UvicornThread

#: Ticks 50 ms apart (the demo's 0.5 s x 0.1): twenty take a second.
SCALE = 0.1
TICKS = 20
#: The reconnection time the ticker sends (ms): quick, so the test is.
RETRY = 100

ALL_EVENTS = [("tick", str(n)) for n in range(1, TICKS + 1)] + [("complete", str(TICKS + 1))]


@pytest.fixture(scope="module")
def demo() -> SSEDemo:
    return SSEDemo(scale=SCALE, retry=RETRY, ticks=TICKS)


@pytest.fixture(scope="module")
def server(demo: SSEDemo) -> Iterator[UvicornThread]:
    with UvicornThread(build_demo_app(scale=SCALE, sse=demo)) as running:
        yield running


async def test_httpx_sse_resumes_with_last_event_id(
    server: UvicornThread, demo: SSEDemo, anyio_backend: str
) -> None:
    name = f"httpx-{anyio_backend}"  # the module's server outlives one backend's run
    url = f"{server.url}/sse/ours/ticker/{name}"
    with anyio.fail_after(10):
        async with httpx.AsyncClient(timeout=5) as client:
            first: list[tuple[str, str]] = []
            async with aconnect_sse(client, "GET", url) as source:
                async for sse in source.aiter_sse():
                    first.append((sse.event, sse.id))
                    if len(first) == 5:
                        break  # leaving the block closes the connection
            resume = {"Last-Event-ID": first[-1][1]}
            async with aconnect_sse(client, "GET", url, headers=resume) as source:
                rest = [(sse.event, sse.id) async for sse in source.aiter_sse()]
    assert first == ALL_EVENTS[:5]
    assert rest == ALL_EVENTS[5:]  # exactly the next ids, none twice, none lost
    connections = demo.tickers.channel(name).connections
    assert [c.last_event_id for c in connections] == [None, "5"]


def test_chromium_reconnects_after_the_server_drops_the_stream(
    server: UvicornThread, demo: SSEDemo
) -> None:
    channel = demo.tickers.channel("browser")
    channel.drop_after(8)  # the admin handle: streams end right after tick 8
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{server.url}/page/events?src=/sse/ours/ticker/browser", timeout=10_000)
        page.wait_for_function("['done', 'failed', 'closed']"
                               ".includes(document.body.dataset.state)", timeout=15_000)
        state = page.evaluate("document.body.dataset.state")
        log = page.evaluate("window.sseLog")
        opens = page.evaluate("window.sseOpens")
        listed = page.locator("#events li").count()
    assert state == "done"  # the page closed the EventSource on ``complete``
    assert [(entry["type"], entry["id"]) for entry in log] == ALL_EVENTS  # once, in order
    assert listed == len(ALL_EVENTS)
    assert opens == 2
    # The browser's reconnection carried the last id it had seen, server-side.
    assert [c.last_event_id for c in channel.connections] == [None, "8"]
    gap = channel.connections[1].at - channel.dropped_at[0]
    print(f"\nChromium reconnected {gap * 1000:.0f} ms after the drop (retry: {RETRY} ms)")
    assert gap >= RETRY / 1000 * 0.9  # it waited for ``retry``...
    assert gap < 2.0  # ...and not much longer
