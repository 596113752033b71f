"""The driver's timers on trio's MockClock: commit deadline, keep-alives and the
send timeout, at the virtual second, in no real time.

The driver reads only ``anyio.current_time()`` and cancel-scope deadlines, so a
clock that jumps to the next deadline whenever every task waits
(``autojump_threshold=0``) runs minutes of stream in milliseconds, exactly.
The same behaviours are tested on asyncio and trio in real time, more
coarsely, in ``test_sse_response.py`` and ``test_response.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
import trio.testing

from streaming import EndReason, EventSourceResponse, NDJSONResponse, StreamingResponse
from streaming.testing import StreamingClient, TestResponse


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    return "trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}


def sent_at(response: TestResponse, body: bytes) -> list[float]:
    """When the app handed each body message equal to ``body`` to send()."""
    return [round(m.time, 3) for m in response.messages
            if m.direction == "send" and m.message.get("body") == body]


async def test_headers_wait_for_the_first_chunk_until_the_commit_deadline() -> None:
    async def slow() -> AsyncIterator[str]:
        await anyio.sleep(10)
        yield "late"

    async with StreamingClient(StreamingResponse(slow(), commit_deadline=2.5)).stream(
            "GET", "/", wait_for_start=False) as response:
        await response.read()
    start = next(m for m in response.messages if m.message["type"] == "http.response.start")
    assert round(start.time, 3) == 2.5
    assert sent_at(response, b"late") == [10.0]


async def test_pings_come_ping_seconds_after_the_last_event() -> None:
    async def quiet_then_events() -> AsyncIterator[str]:
        yield "a"
        await anyio.sleep(12)  # pings at 5 and 10
        yield "b"
        await anyio.sleep(6)  # a ping 5 s after b
        yield "c"

    app = EventSourceResponse(quiet_then_events(), ping=5, send_timeout=None)
    response = await StreamingClient(app).get("/")
    assert sent_at(response, b":ping\n") == [5.0, 10.0, 17.0]


@pytest.mark.parametrize("batch", [False, True])
async def test_no_ping_while_events_flow_faster_than_the_interval(batch: bool) -> None:
    async def every_second() -> AsyncIterator[str]:
        for i in range(120):
            await anyio.sleep(1)
            yield str(i)

    app = EventSourceResponse(every_second(), ping=5, batch=batch)  # default send timeout
    response = await StreamingClient(app).get("/")
    assert sent_at(response, b":ping\n") == []
    assert len(sent_at(response, b"data: 119\n\n")) == 1


async def test_events_just_slower_than_the_interval_get_one_ping_each() -> None:
    async def every_six_seconds() -> AsyncIterator[str]:
        for i in range(5):
            yield str(i)
            await anyio.sleep(6)

    response = await StreamingClient(EventSourceResponse(every_six_seconds(), ping=5)).get("/")
    assert sent_at(response, b":ping\n") == [5.0, 11.0, 17.0, 23.0, 29.0]


async def never_ending() -> AsyncIterator[dict[str, int]]:
    i = 0
    while True:
        yield {"i": i}
        i += 1


@pytest.mark.parametrize("limit", [1, 2, 4, 30])
async def test_a_reader_that_stops_at_once_is_cut_within_an_eighth_of_the_timeout(
        limit: float) -> None:
    app = NDJSONResponse(never_ending(), send_timeout=limit)
    client = StreamingClient(app, buffer=4)  # the "socket" holds four messages
    async with client.stream("GET", "/") as response:
        outcome = await app.wait_for_outcome()  # the test never reads
    stalled = max(m.time for m in response.messages if m.direction == "send"
                  and m.message["type"] == "http.response.body")  # the send that blocked
    assert outcome.reason is EndReason.SEND_TIMEOUT
    assert limit <= outcome.duration - stalled <= limit * 9 / 8


async def test_a_stall_on_the_first_message_after_a_quiet_spell_is_timed_exactly() -> None:
    async def quiet_then_more() -> AsyncIterator[bytes]:
        yield b"x"  # fills the client's buffer: it never reads
        await anyio.sleep(100)
        yield b"y"  # blocks at once

    app = StreamingResponse(quiet_then_more(), send_timeout=8, commit_deadline=0)
    async with StreamingClient(app, buffer=1).stream("GET", "/"):
        outcome = await app.wait_for_outcome()
    assert outcome.reason is EndReason.SEND_TIMEOUT
    assert round(outcome.duration, 3) == 108.0  # the watchdog stamped that send's start


async def test_a_burst_after_a_quiet_spell_is_cut_within_half_the_timeout() -> None:
    async def quiet_then_a_burst() -> AsyncIterator[bytes]:
        yield b"x"
        await anyio.sleep(100)
        while True:
            yield b"y"

    app = StreamingResponse(quiet_then_a_burst(), send_timeout=8, commit_deadline=0)
    async with StreamingClient(app, buffer=3).stream("GET", "/") as response:
        assert await response.next_chunk() == b"x"  # then the test stops reading
        outcome = await app.wait_for_outcome()
    assert outcome.reason is EndReason.SEND_TIMEOUT
    assert 108 <= outcome.duration <= 108 + 8 / 2


async def test_a_slow_but_steady_reader_is_never_cut() -> None:
    async def hundred() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"z" * 100

    app = StreamingResponse(hundred(), send_timeout=2)
    async with StreamingClient(app, buffer=1).stream("GET", "/") as response:
        async for _ in response.iter_chunks():
            await anyio.sleep(1.9)  # takes each message just within the timeout
    assert app.outcome is not None and app.outcome.reason is EndReason.COMPLETED
    assert app.outcome.duration > 100 * 1.9 - 2


class QuietThenOne:
    """An async iterator that is not a generator: no ``ag_running`` of its own."""

    def __init__(self) -> None:
        self.sent = False

    def __aiter__(self) -> QuietThenOne:
        return self

    async def __anext__(self) -> str:
        if self.sent:
            raise StopAsyncIteration
        await anyio.sleep(12)  # busy, not parked at a yield: pings at 5 and 10
        self.sent = True
        return "a"


async def test_an_iterator_object_awaiting_inside_gets_pings_too() -> None:
    app = EventSourceResponse(QuietThenOne(), ping=5, send_timeout=8, commit_deadline=0)
    response = await StreamingClient(app).get("/")
    assert sent_at(response, b":ping\n") == [5.0, 10.0]
    assert sent_at(response, b"data: a\n\n") == [12.0]
