"""StreamWatch: each stream of every response type opens and closes one
record, with the figures the driver counted (bytes, chunks, time to the
first body byte) and why it ended; observers cannot break a stream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from streaming import (
    EndReason,
    EventSourceResponse,
    FileResponse,
    NDJSONResponse,
    StreamingResponse,
    StreamLimiter,
)
from streaming.observe import MessageFlow, StreamRecord, StreamWatch
from streaming.testing import StreamingClient


class Seen:
    """An observer that keeps everything it is told."""

    def __init__(self) -> None:
        self.opened: list[StreamRecord] = []
        self.closed: list[StreamRecord] = []
        self.refused: list[str] = []
        self.live: list[tuple[int, int, str]] = []

    def stream_opened(self, stream: StreamRecord) -> None:
        self.opened.append(stream)

    def stream_closed(self, stream: StreamRecord) -> None:
        self.closed.append(stream)

    def stream_refused(self, scope: Any, why: str) -> None:
        self.refused.append(why)


async def three_chunks() -> AsyncIterator[bytes]:
    for chunk in (b"one\n", b"two\n", b"three\n"):
        yield chunk


def routes(tmp_path: Path) -> Starlette:
    data = tmp_path / "data.bin"
    data.write_bytes(b"f" * 70_000)

    async def text(request: Request) -> StreamingResponse:
        return StreamingResponse(three_chunks())

    async def ndjson(request: Request) -> NDJSONResponse:
        return NDJSONResponse(iter([{"a": 1}, {"b": 2}]))

    async def sse(request: Request) -> EventSourceResponse:
        return EventSourceResponse(iter(["x", "y"]))

    async def file(request: Request) -> FileResponse:
        return FileResponse(data, chunk_size=32_768)

    return Starlette(routes=[Route("/text/{n}", text), Route("/ndjson", ndjson),
                             Route("/sse", sse), Route("/file", file)])


@pytest.mark.parametrize(("path", "route", "kind", "chunks"), [
    ("/text/1", "/text/{n}", "StreamingResponse", 3),
    ("/ndjson", "/ndjson", "NDJSONResponse", 2),
    ("/sse", "/sse", "EventSourceResponse", 2),
    ("/file", "/file", "FileResponse", 3),
])
async def test_each_response_type_reports_one_stream(tmp_path: Path, path: str, route: str,
                                                     kind: str, chunks: int) -> None:
    seen = Seen()
    client = StreamingClient(StreamWatch(routes(tmp_path), seen))
    with anyio.fail_after(5):
        response = await client.get(path)
    [opened], [closed] = seen.opened, seen.closed
    assert opened is closed
    assert (closed.method, closed.path, closed.route, closed.response_type) == (
        "GET", path, route, kind)
    assert closed.client == "127.0.0.1:50000"
    outcome = closed.outcome
    assert outcome is not None and outcome.reason is EndReason.COMPLETED
    assert outcome.chunks_sent == chunks
    assert outcome.bytes_sent == len(response.body)  # counted as sent, all of it
    assert outcome.first_byte_after is not None
    assert 0 <= outcome.first_byte_after <= outcome.duration
    assert closed.live is None and closed.scope is None  # nothing kept alive


async def test_a_cut_stream_counts_what_was_sent_not_what_was_promised(tmp_path: Path) -> None:
    seen = Seen()
    client = StreamingClient(StreamWatch(routes(tmp_path), seen))
    with anyio.fail_after(5):
        async with client.stream("GET", "/file") as response:
            first = await response.next_chunk()
    outcome = seen.closed[0].outcome
    assert outcome is not None
    assert outcome.reason is EndReason.CLIENT_DISCONNECTED
    assert first is not None and outcome.bytes_sent < 70_000  # not the Content-Length


async def test_the_open_record_reads_the_driver_live() -> None:
    seen = Seen()
    step = anyio.Event()

    async def produce() -> AsyncIterator[bytes]:
        yield b"12345"
        await step.wait()
        yield b"678"

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await StreamingResponse(produce())(scope, receive, send)

    client = StreamingClient(StreamWatch(app, seen))
    with anyio.fail_after(5):
        async with client.stream("GET", "/") as response:
            await response.next_chunk()
            live = seen.opened[0].live
            assert live is not None
            assert (live.chunks_sent, live.bytes_sent, live.state) == (1, 5, "streaming")
            assert live.first_byte_at is not None
            step.set()
            await response.read()
    outcome = seen.closed[0].outcome
    assert outcome is not None and (outcome.chunks_sent, outcome.bytes_sent) == (2, 8)


async def test_a_producer_that_fails_before_its_first_chunk() -> None:
    seen = Seen()

    async def produce() -> AsyncIterator[bytes]:
        raise LookupError("nothing to send")
        yield b""  # pragma: no cover

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await StreamingResponse(produce())(scope, receive, send)

    client = StreamingClient(StreamWatch(app, seen))
    response = await client.get("/")
    outcome = seen.closed[0].outcome
    assert response.status_code == 500
    assert outcome is not None and outcome.reason is EndReason.PRODUCER_ERROR
    assert (outcome.bytes_sent, outcome.chunks_sent, outcome.first_byte_after) == (0, 0, None)


async def test_refusals_are_reported_and_foreign_requests_are_not_streams() -> None:
    seen = Seen()
    gate = anyio.Event()

    async def produce() -> AsyncIterator[bytes]:
        yield b"open\n"
        await gate.wait()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/plain":  # not one of our responses: not a stream
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await StreamingResponse(produce())(scope, receive, send)

    client = StreamingClient(StreamWatch(StreamLimiter(app, 1), seen))
    with anyio.fail_after(5):
        async with client.stream("GET", "/") as first:
            await first.next_chunk()
            assert (await client.get("/")).status_code == 429
            gate.set()
        await client.get("/plain")
    assert seen.refused == ["limit"]
    assert len(seen.opened) == len(seen.closed) == 1


async def test_an_observer_that_raises_is_logged_and_the_stream_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Seen):
        def stream_opened(self, stream: StreamRecord) -> None:
            raise RuntimeError("observer bug")

    seen = Seen()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await StreamingResponse(three_chunks())(scope, receive, send)

    with caplog.at_level(logging.ERROR, "streaming"):
        response = await StreamingClient(StreamWatch(app, Broken(), seen)).get("/")
    assert response.body == b"one\ntwo\nthree\n"
    assert len(seen.closed) == 1  # the next observer still heard of it
    assert "observer bug" in caplog.text


async def test_a_cancelled_response_still_closes_its_record() -> None:
    seen = Seen()

    async def produce() -> AsyncIterator[bytes]:
        yield b"open\n"
        await anyio.sleep_forever()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        with anyio.move_on_after(0.05):  # the server, say, cancels the app
            await StreamingResponse(produce())(scope, receive, send)

    with anyio.fail_after(5):
        async with StreamingClient(StreamWatch(app, seen)).stream("GET", "/") as response:
            await response.next_chunk()
            await response.wait_for_app()
    assert len(seen.closed) == 1 and seen.closed[0].outcome is None


async def test_the_message_flow_is_bounded() -> None:
    flow = MessageFlow(anyio.current_time(), head=3, tail=2)
    for n in range(10):
        flow.record("send", {"type": "http.response.body", "body": b"%d" % n,
                             "more_body": True})
    assert [m.preview for m in flow.messages] == [b"0", b"1", b"2", b"8", b"9"]
    assert flow.dropped == 5
