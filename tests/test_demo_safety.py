"""The demo is copied into production, so it must be safe to expose: strict
parameters, bounded per-request state, no fault injection from the outside,
a same-origin check done as the browser resolves the URL."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from examples.app import build_demo_app
from examples.pages import TICKER_PATH
from examples.scenario1 import ParameterError, parse_count, parse_delay
from streaming._types import ASGIApp, Receive, Scope, Send
from streaming.testing import StreamingClient
from tests.browser import chromium
from tests.servers import Probe, UvicornThread

# -- strict count and delay ---------------------------------------------------------

@pytest.mark.parametrize("text", ["١٢", "1_0", "+5", " 5", "5 ", "0x10", "5.0", "", "1e3",
                                  "²", "9" * 50])
def test_count_takes_ascii_digits_only(text: str) -> None:
    with pytest.raises(ParameterError, match="count must be"):
        parse_count(text)


@pytest.mark.parametrize("text", ["١.٥", "0_5", "+0.5", " 0.5", "0.5 ", "1e0", "inf", "nan",
                                  ".5", "5.", "0x1", "", "Infinity", "½"])
def test_delay_takes_a_plain_decimal_only(text: str) -> None:
    with pytest.raises(ParameterError, match="delay must be"):
        parse_delay(text, 0.5)


def test_what_the_docs_say_is_accepted() -> None:
    assert [parse_count(t) for t in ("0", "10", "10000")] == [0, 10, 10000]
    assert [parse_delay(t, 9.0) for t in ("0", "0.5", "10", None)] == [0, 0.5, 10, 9.0]


@pytest.mark.parametrize("path", ["/parameterized/%D9%A1%D9%A2", "/parameterized/1_0",
                                  "/parameterized/3?delay=1_0", "/parameterized/3?delay=%20+1",
                                  "/starlette/parameterized/+3", "/json/%EF%BC%93"])
async def test_the_endpoints_answer_422(path: str) -> None:
    client = StreamingClient(build_demo_app(scale=0.01))
    response = await client.get(path)
    assert response.status_code == 422


# -- ?src= stays on our origin, as Chromium resolves it ---------------------------

def other_origin(probe: Probe) -> ASGIApp:
    """Another origin that would gladly serve any page (CORS *): it marks every
    request, so the test sees a page that even tried."""
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        probe.mark(f"hit {scope['path']}")
        headers = [(b"access-control-allow-origin", b"*"),
                   (b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: EVIL\n\n"})
    return app


HOSTILE_SRC = ["/\\{host}/evil", "/%09/{host}/evil", "/%0A/{host}/evil", "//{host}/evil",
               "\\\\{host}/evil", "http://{host}/evil", "/%5C{host}/evil"]


@pytest.mark.parametrize("page_path", ["/page/stream", "/page/events"])
def test_chromium_reads_only_our_own_origin(page_path: str) -> None:
    probe = Probe()
    with UvicornThread(build_demo_app(scale=0.01)) as ours, \
            UvicornThread(other_origin(probe)) as theirs, chromium() as browser:
        host = theirs.url.removeprefix("http://")
        page = browser.new_page()
        for pattern in HOSTILE_SRC:
            src = quote(pattern.format(host=host), safe="/%:")
            page.goto(f"{ours.url}{page_path}?src={src}", timeout=10_000)
            shown = page.text_content("#src")
            assert shown in ("/simple", TICKER_PATH), (pattern, shown)
        # Our own paths still work, query included.
        page.goto(f"{ours.url}/page/stream?src=/json/2%3Fx%3D1", timeout=10_000)
        assert page.text_content("#src") == "/json/2?x=1"
        page.close()
    assert "hit /evil" not in probe, "a page fetched from another origin"
