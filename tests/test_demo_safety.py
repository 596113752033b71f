"""The demo is copied into production, so it must be safe to expose: strict
parameters, bounded per-request state, no fault injection from the outside,
a same-origin check done as the browser resolves the URL."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.applications import Starlette

from examples.app import build_demo_app
from examples.chat import MAX_ANSWER, READER_COOKIE, ChatDemo, Transcript, Transcripts
from examples.scenario1 import ParameterError, parse_count, parse_delay
from examples.sse_events import TICKER_PATH, Connection, TickerChannel
from streaming import EndReason
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


# -- bounded per-request state ------------------------------------------------------

def test_transcripts_are_bounded_per_reader_and_in_all() -> None:
    transcripts = Transcripts(keep=50, per_reader=3)
    for i in range(10):
        transcripts.save("alice", Transcript(f"p{i}", "a" * 100_000, "stop", None))
    assert [t.prompt for t in transcripts.of("alice")] == ["p7", "p8", "p9"]
    assert len(transcripts.of("alice")[0].answer) == MAX_ANSWER
    for i in range(200):
        transcripts.save(f"reader-{i}", Transcript("p", "a", "stop", None))
        transcripts.discard(EndReason.CLIENT_DISCONNECTED)
    assert len(transcripts) == 50 and transcripts.of("alice") == []
    assert transcripts.saved_count == 210
    assert transcripts.discarded == {EndReason.CLIENT_DISCONNECTED: 200}
    assert transcripts.of(None) == []


async def test_a_hostile_reader_cookie_is_no_reader() -> None:
    demo = ChatDemo(scale=0.01)
    app = Starlette(routes=demo.routes())
    demo.transcripts.save("A" * 22, Transcript("secret", "answer", "stop", None))
    client = StreamingClient(app)
    for cookie in ["A" * 21 + "=", "A" * 21 + "\\u00e9", "../" + "A" * 19, "A" * 23]:
        response = await client.get("/chat/transcripts",
                                    headers={"cookie": f"{READER_COOKIE}={cookie}"})
        assert json.loads(response.body)["saved"] == [], cookie
    mine = await client.get("/chat/transcripts", headers={"cookie": f"{READER_COOKIE}={'A' * 22}"})
    assert json.loads(mine.body)["saved"][0]["prompt"] == "secret"
    page = await client.get("/chat")
    assert page.headers["set-cookie"].startswith(f"{READER_COOKIE}=")
    assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=Strict" in page.headers[
        "set-cookie"]


def test_the_ticker_keeps_a_bounded_record_of_connections() -> None:
    channel = TickerChannel(interval=0.0, total=1, history=4)
    for i in range(5000):
        channel.connections.append(Connection(float(i), None))
    assert len(channel.connections) == channel.connections.maxlen


# -- strict numbers in the other examples -------------------------------------------

HOSTILE_NUMBERS = ["١٢", "1_0", "+5", " 5", "0x10", "1e3", "nan", "inf", "", "9" * 50, "-1"]


@pytest.mark.parametrize("text", HOSTILE_NUMBERS)
@pytest.mark.parametrize("route", ["/tokens?n=", "/download?size=", "/ticks?pace="])
async def test_production_example_answers_bad_numbers_with_400(route: str, text: str) -> None:
    from examples.production import routes

    response = await StreamingClient(routes).get(route + quote(text))
    assert response.status_code == 400, response.body
    assert b"must be" in response.body


@pytest.mark.parametrize("text", HOSTILE_NUMBERS)
async def test_files_example_answers_bad_rows_with_400(text: str, tmp_path: Path) -> None:
    from examples.files import create_app

    response = await StreamingClient(create_app(tmp_path)).get("/export.csv?rows=" + quote(text))
    assert response.status_code == 400, response.body
    assert b"rows must be" in response.body


async def test_the_strict_numbers_still_take_plain_ones(tmp_path: Path) -> None:
    from examples.files import create_app
    from examples.production import routes

    assert (await StreamingClient(routes).get("/tokens?n=3")).body == b"token0 token1 token2 "
    csv = await StreamingClient(create_app(tmp_path)).get("/export.csv?rows=2")
    assert csv.status_code == 200 and len(csv.body.splitlines()) == 3
