"""The disconnect matrix: every moment a client can leave, for async and sync
producers, on a 2.3-style server (silent ``send``) and a 2.4-style one
(``send`` raises ``OSError``). In every case ``finally`` ran, the outcome says
why, and nothing (no task, no producer left in a worker thread) is left behind."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Generator, Iterator
from inspect import GEN_CLOSED, getgeneratorstate
from typing import Literal

import anyio
import anyio.lowlevel
import pytest

from streaming import EndReason, StreamingResponse, StreamingWarning
from streaming._types import Message
from streaming.testing import StreamingClient

CHUNKS = 3
Spec = Literal["2.3", "2.4"]
SPECS: list[Spec] = ["2.3", "2.4"]


class Tracker:
    """What the producer went through, visible from any thread."""

    def __init__(self) -> None:
        self.started = False
        self.finally_ran = threading.Event()
        self.branches: list[str] = []


def async_idle_producer(tracker: Tracker) -> AsyncIterator[bytes]:
    """Yields CHUNKS chunks, then waits forever, like an LLM between tokens."""

    async def produce() -> AsyncIterator[bytes]:
        tracker.started = True
        try:
            for i in range(CHUNKS):
                yield b"chunk %d\n" % i
            await anyio.sleep_forever()
        except GeneratorExit:
            tracker.branches.append("GeneratorExit")
            raise
        except anyio.get_cancelled_exc_class():
            tracker.branches.append("cancelled")
            raise
        finally:
            tracker.finally_ran.set()

    return produce()


def sync_idle_producer(tracker: Tracker, release: threading.Event) -> Generator[bytes, None, None]:
    """Yields CHUNKS chunks, then blocks its worker thread until ``release``."""
    tracker.started = True
    try:
        for i in range(CHUNKS):
            yield b"chunk %d\n" % i
        release.wait(5)
        yield b"produced after the client left\n"
    except GeneratorExit:
        tracker.branches.append("GeneratorExit")
        raise
    finally:
        tracker.finally_ran.set()


async def assert_cleaned_up(app: StreamingResponse, tracker: Tracker) -> None:
    with anyio.fail_after(2):
        outcome = await app.wait_for_outcome()
    # A producer closed before it ever ran has no finally to run (close() on an
    # unstarted generator); one that started must have run it.
    assert tracker.finally_ran.is_set() == tracker.started
    assert outcome.reason is EndReason.CLIENT_DISCONNECTED
    assert not outcome.body_complete
    assert not outcome.cleanup_timed_out


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("after", range(CHUNKS + 1))
async def test_async_producer_idle(spec: Spec, after: int) -> None:
    tracker = Tracker()
    app = StreamingResponse(async_idle_producer(tracker), commit_deadline=0)
    client = StreamingClient(app, spec_version=spec)
    with anyio.fail_after(2):
        async with client.stream("GET", "/", disconnect_after=after) as response:
            await response.read()
    await assert_cleaned_up(app, tracker)
    assert response.body.count(b"\n") == after
    if after == CHUNKS:
        # Idle at an await when the client left: cancelled there. The tutorial's
        # ``except GeneratorExit`` only runs for a producer parked at a yield.
        assert tracker.branches == ["cancelled"]
    else:
        assert len(tracker.branches) == int(tracker.started)


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("after", range(CHUNKS + 1))
async def test_sync_producer_parked_in_its_thread(spec: Spec, after: int) -> None:
    tracker, release = Tracker(), threading.Event()
    generator = sync_idle_producer(tracker, release)
    app = StreamingResponse(generator, commit_deadline=0)
    client = StreamingClient(app, spec_version=spec)
    with anyio.fail_after(2):
        async with client.stream("GET", "/", disconnect_after=after) as response:
            await response.read()
            # The blocking call returns after the client left (and the driver
            # saw it leave). Quick items are pulled several per thread round
            # trip, so the producer may have reached that call even when the
            # client left before the last chunk.
            await anyio.wait_all_tasks_blocked()
            release.set()
    await assert_cleaned_up(app, tracker)
    assert getgeneratorstate(generator) == GEN_CLOSED  # no thread is still inside it
    if after < CHUNKS and tracker.started:
        assert tracker.branches == ["GeneratorExit"]  # close() at the yield


@pytest.mark.parametrize("spec", SPECS)
async def test_disconnect_before_the_first_chunk(spec: Spec) -> None:
    tracker = Tracker()

    async def produce() -> AsyncIterator[bytes]:
        tracker.started = True
        try:
            await anyio.sleep_forever()
            yield b""
        finally:
            tracker.finally_ran.set()

    app = StreamingResponse(produce(), commit_deadline=None)
    client = StreamingClient(app, spec_version=spec)
    with anyio.fail_after(2):
        async with client.stream("GET", "/", wait_for_start=False) as response:
            await anyio.wait_all_tasks_blocked()
            await response.disconnect()
    await assert_cleaned_up(app, tracker)
    outcome = await app.wait_for_outcome()
    assert not outcome.headers_sent
    assert [m for m in response.messages if m.direction == "send"] == []


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("kind", ["async", "sync"])
@pytest.mark.parametrize("after", range(1, CHUNKS + 1))
async def test_busy_producer_and_a_slow_client(spec: Spec, kind: str, after: int) -> None:
    """The producer never waits; the client reads slowly (the server buffers one
    message), so the response is blocked in ``send()`` when the client leaves."""
    tracker = Tracker()

    def produce_sync() -> Iterator[bytes]:
        tracker.started = True
        try:
            while True:
                yield b"x"
        finally:
            tracker.finally_ran.set()

    async def produce_async() -> AsyncIterator[bytes]:
        tracker.started = True
        try:
            while True:
                yield b"x"
        finally:
            tracker.finally_ran.set()

    content = produce_async() if kind == "async" else produce_sync()
    app = StreamingResponse(content, commit_deadline=0)
    client = StreamingClient(app, spec_version=spec, buffer=1)
    with anyio.fail_after(2):
        async with client.stream("GET", "/", disconnect_after=after) as response:
            await response.read()
    await assert_cleaned_up(app, tracker)
    assert response.body == b"x" * after


async def test_a_yield_inside_finally_after_disconnect_warns_once() -> None:
    released: list[str] = []

    async def produce() -> AsyncIterator[str]:
        try:
            yield "data\n"
            await anyio.sleep_forever()
        finally:
            released.append("released")
            yield "resource released\n"  # the tutorial's /cleanup does this

    app = StreamingResponse(produce(), commit_deadline=0)
    with anyio.fail_after(2), pytest.warns(StreamingWarning, match="yielded after the client"):
        async with StreamingClient(app).stream("GET", "/", disconnect_after=1) as response:
            await response.read()
        outcome = await app.wait_for_outcome()
    assert released == ["released"]
    assert outcome.reason is EndReason.CLIENT_DISCONNECTED
    assert b"resource released" not in response.body


async def test_a_yield_inside_finally_during_close_warns() -> None:
    async def produce() -> AsyncIterator[str]:
        try:
            yield "a"
            yield "b"
        finally:
            yield "in finally"

    app = StreamingResponse(produce(), commit_deadline=0)
    # buffer=0: the response is parked in send() (the producer at a plain yield)
    # when the client leaves; send() raises (2.4), so the driver's aclose()
    # throws GeneratorExit at that yield and meets the yield in finally.
    client = StreamingClient(app, buffer=0, spec_version="2.4")
    with anyio.fail_after(2), pytest.warns(StreamingWarning):
        async with client.stream("GET", "/", disconnect_after=1) as response:
            await response.read()
        outcome = await app.wait_for_outcome()
    assert outcome.reason is EndReason.CLIENT_DISCONNECTED


async def test_cleanup_timeout_is_reported() -> None:
    async def produce() -> AsyncIterator[bytes]:
        try:
            yield b"x"
            yield b"y"
        finally:
            await anyio.sleep(5)  # a cleanup that hangs: cancelled at the timeout

    app = StreamingResponse(produce(), commit_deadline=0, cleanup_timeout=0.05)
    # Parked at a yield when the client leaves, so aclose() runs the slow finally.
    client = StreamingClient(app, buffer=0, spec_version="2.4")
    with anyio.fail_after(2):
        async with client.stream("GET", "/", disconnect_after=1) as response:
            await response.read()
        outcome = await app.wait_for_outcome()
    assert outcome.cleanup_timed_out
    assert outcome.reason is EndReason.CLIENT_DISCONNECTED


async def test_sync_cleanup_timeout_still_closes_the_producer_later() -> None:
    tracker = Tracker()
    parked, release = threading.Event(), threading.Event()

    def produce() -> Iterator[bytes]:
        try:
            yield b"x"
            parked.set()
            release.wait(5)  # parked in its worker thread
            yield b"y"
        finally:
            tracker.finally_ran.set()

    app = StreamingResponse(produce(), commit_deadline=0, cleanup_timeout=0.05)
    with anyio.fail_after(2):
        async with StreamingClient(app).stream("GET", "/") as response:
            async for _ in response.iter_chunks():
                break
            assert await anyio.to_thread.run_sync(parked.wait, 2)
            await response.disconnect()
        outcome = await app.wait_for_outcome()
    assert outcome.cleanup_timed_out and not tracker.finally_ran.is_set()
    release.set()
    # The worker thread closes the generator itself once next() returns.
    assert await anyio.to_thread.run_sync(tracker.finally_ran.wait, 2)


async def test_the_event_loop_stays_free_while_a_sync_producer_blocks() -> None:
    def produce() -> Iterator[bytes]:
        time.sleep(0.2)
        yield b"x"

    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    with anyio.fail_after(2):
        async with anyio.create_task_group() as group:
            group.start_soon(tick)
            await StreamingClient(StreamingResponse(produce())).get("/")
            group.cancel_scope.cancel()
    assert ticks >= 5  # the loop kept running during the 0.2 s block


@pytest.mark.parametrize(("chunks", "waits", "listens"), [
    (0, False, False),   # sent whole without a wait: no listener
    (1, False, False),
    (2, False, True),    # a second chunk: a stream that goes on
    (1, True, True),     # the producer waits: the listener is there while it does
])
async def test_the_listener_starts_at_the_first_wait_or_when_the_stream_goes_on(
        chunks: int, waits: bool, listens: bool) -> None:
    """A response that is sent whole without waiting (a short answer) starts no
    listener task: nothing could hear a disconnect before its end anyway. One
    that waits, or goes on past its first chunk, listens from then on."""
    received: list[str] = []
    done = anyio.Event()

    async def receive() -> Message:
        received.append("receive")
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    async def producer() -> AsyncIterator[bytes]:
        for n in range(chunks):
            if waits:
                await anyio.lowlevel.checkpoint()
            yield b"%d" % n

    response = StreamingResponse(producer())
    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    with anyio.fail_after(5):
        await response(scope, receive, send)
    assert response.outcome is not None and response.outcome.reason is EndReason.COMPLETED
    assert response.outcome.chunks_sent == chunks
    assert bool(received) is listens
