"""Card 6 on three layers: our ``EventSourceResponse``, Starlette's
``StreamingResponse`` with hand-formatted events, and sse-starlette.

The happy path must parse (with our ``SSEParser``) to the same events on every
layer, in-process and on a real uvicorn read by httpx-sse. The error variant
records how they differ once the headers are out (WHATWG HTML 9.2 has no error
field, so each layer decides):

* ours sends ``event: error`` with ``{"status": 500, ...}``, then cuts the
  stream (no terminating chunk), and the app raises so the server logs it;
* Starlette and sse-starlette send nothing more and cut the stream the same
  way: the client sees ``start, progress, progress`` and an incomplete body,
  with no way to tell a failed job from a dropped connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
import httpx
import pytest
from httpx_sse import aconnect_sse
from starlette.applications import Starlette

from examples.app import build_demo_app
from examples.sse_events import SSE_LAYERS, JobFailed
from streaming import ServerSentEvent, SSEParser
from streaming.compare.sse_starlette_layer import to_sse_starlette
from streaming.compare.starlette_layer import hand_format
from streaming.testing import StreamingClient
from tests.servers import UvicornThread

#: Asserts peers' behaviour (pinned in tests/constraints.txt).
pytestmark = pytest.mark.peer

#: Progress steps 5 ms apart instead of the demo's 0.5 s.
SCALE = 0.01

CARD6 = [("start", "开始"), ("progress", "25%"), ("progress", "50%"), ("progress", "75%"),
         ("progress", "100%"), ("complete", "完成")]
FAILED_AT_50 = CARD6[:3]


def pairs(events: list[ServerSentEvent]) -> list[tuple[str | None, str]]:
    return [(e.event, e.data) for e in events]


@pytest.fixture(scope="module")
def app() -> Starlette:
    return build_demo_app(scale=SCALE)


@pytest.fixture
def client(app: Starlette) -> StreamingClient:
    return StreamingClient(app, raise_app_exceptions=False)  # errors are compared, not raised


# -- in-process ---------------------------------------------------------------------


async def test_the_three_layers_send_the_same_events(client: StreamingClient) -> None:
    for layer in SSE_LAYERS:
        with anyio.fail_after(5):
            response = await client.get(f"/sse/{layer}/progress")
        assert response.status_code == 200, layer
        assert pairs(response.events()) == CARD6, layer
        assert response.complete, layer
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"


async def test_header_differences(client: StreamingClient) -> None:
    with anyio.fail_after(5):
        headers = {layer: (await client.get(f"/sse/{layer}/progress")).headers
                   for layer in SSE_LAYERS}
    # sse-starlette forces "Connection: keep-alive" (illegal over HTTP/2) and
    # prefers no-store; the hand-formatted layer copies our defaults on purpose.
    assert "connection" not in headers["ours"]
    assert headers["sse-starlette"]["connection"] == "keep-alive"
    assert [headers[layer]["cache-control"] for layer in SSE_LAYERS] == [
        "no-cache", "no-cache", "no-store"]
    assert {headers[layer]["x-accel-buffering"] for layer in SSE_LAYERS} == {"no"}


async def test_the_error_variant_differs(client: StreamingClient) -> None:
    with anyio.fail_after(5):
        seen = {layer: await client.get(f"/sse/{layer}/progress-error") for layer in SSE_LAYERS}
    ours = pairs(seen["ours"].events())
    assert ours[:-1] == FAILED_AT_50
    assert ours[-1][0] == "error"
    assert json.loads(ours[-1][1]) == {"status": 500, "message": "Internal Server Error"}
    for layer in ("starlette", "sse-starlette"):
        assert pairs(seen[layer].events()) == FAILED_AT_50, layer  # no error event at all
    for layer, response in seen.items():
        assert response.status_code == 200, layer  # the headers were out already
        assert not response.complete, layer  # cut: no terminating message
        assert isinstance(response.app_exception, JobFailed), layer  # for the server log


# -- the formatters of the comparison layer (pure) -----------------------------------


@pytest.mark.parametrize(("event", "parsed"), [
    (ServerSentEvent(data="one line"), (None, "one line")),
    (ServerSentEvent(data="two\nlines\r\nand\rthree", event="multi", id="7"),
     ("multi", "two\nlines\nand\nthree")),  # 9.2.6 joins data lines with LF
    (ServerSentEvent(data="", event="empty"), ("empty", "")),
    (ServerSentEvent(data={"tokens": [1, 2]}, retry=1500), (None, '{"tokens":[1,2]}')),
    (ServerSentEvent(comment="a comment", data="and data"), (None, "and data")),
])
def test_both_formatters_parse_back_to_the_event(
    event: ServerSentEvent, parsed: tuple[str | None, str]
) -> None:
    assert pairs(SSEParser().feed("".join(hand_format(event)).encode())) == [parsed]
    assert pairs(SSEParser().feed(to_sse_starlette(event).encode())) == [parsed]


def test_hand_format_writes_card6_chunks() -> None:
    # Card 6 yields "event: start\n" and then "data: 开始\n\n".
    assert hand_format(ServerSentEvent(event="start", data="开始")) == [
        "event: start\n", "data: 开始\n\n"]
    assert hand_format(ServerSentEvent(comment="ping")) == [":ping\n"]  # no blank line


def test_hand_format_refuses_a_line_break_in_event_or_id() -> None:
    with pytest.raises(ValueError, match="line break"):
        hand_format(ServerSentEvent(data="x", event="bad\nname"))
    with pytest.raises(ValueError, match="line break"):
        hand_format(ServerSentEvent(data="x", id="1\r2"))


# -- a real uvicorn and httpx-sse ----------------------------------------------------


@pytest.fixture(scope="module")
def server(app: Starlette) -> Iterator[UvicornThread]:
    with UvicornThread(app) as running:
        yield running


async def read_with_httpx_sse(url: str) -> tuple[list[tuple[str, str]], str]:
    """The events httpx-sse yields, and how the stream ended."""
    events: list[tuple[str, str]] = []
    with anyio.fail_after(10):
        async with httpx.AsyncClient(timeout=5) as client, \
                aconnect_sse(client, "GET", url) as source:
            try:
                async for sse in source.aiter_sse():
                    events.append((sse.event, sse.data))
            except httpx.RemoteProtocolError as exc:
                return events, f"cut: {exc}"
    return events, "complete"


async def test_httpx_sse_reads_the_same_events_from_each_layer(server: UvicornThread) -> None:
    for layer in SSE_LAYERS:
        events, end = await read_with_httpx_sse(f"{server.url}/sse/{layer}/progress")
        assert events == CARD6, layer
        assert end == "complete", layer


async def test_httpx_sse_sees_the_error_variant_cut(server: UvicornThread) -> None:
    ended = {}
    for layer in SSE_LAYERS:
        events, ended[layer] = await read_with_httpx_sse(
            f"{server.url}/sse/{layer}/progress-error")
        extra = [("error", '{"status": 500, "message": "Internal Server Error"}')]
        assert events == FAILED_AT_50 + (extra if layer == "ours" else []), layer
    # uvicorn closes the connection without the terminating chunk on every layer.
    assert all("incomplete chunked read" in end for end in ended.values()), ended
