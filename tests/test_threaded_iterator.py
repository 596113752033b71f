"""Sync producers in worker threads: several items per round trip while
``next()`` is quick, one at a time once it is slow, and closed in a thread of
their own even when every worker thread of the shared pool is busy."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import anyio
import anyio.to_thread
import pytest

from streaming import EndReason, StreamingResponse
from streaming.driver.sources import ThreadedIterator
from streaming.testing import StreamingClient


class Counting:
    """A sync iterator that counts how many times it was asked for an item and
    in which thread each ``next()`` ran."""

    def __init__(self, items: list[object], pause: float = 0.0) -> None:
        self._items = iter(items)
        self._pause = pause
        self.calls = 0
        self.threads: set[int] = set()

    def __iter__(self) -> Counting:
        return self

    def __next__(self) -> object:
        self.calls += 1
        self.threads.add(threading.get_ident())
        if self._pause:
            time.sleep(self._pause)
        return next(self._items)


async def test_quick_items_come_several_per_round_trip() -> None:
    produced = Counting(list(range(2000)))
    source = ThreadedIterator(produced)
    with anyio.fail_after(10):
        items = [item async for item in source]
    assert items == list(range(2000))
    assert source.round_trips < 100  # one per item would be 2001


async def test_the_first_item_comes_alone() -> None:
    # The first item commits the headers: it is never held back for a second.
    produced = Counting(["a", "b", "c"])
    source = ThreadedIterator(produced)
    with anyio.fail_after(5):
        assert await anext(source) == "a"
    assert produced.calls == 1


async def test_a_slow_producer_gets_one_item_per_round_trip() -> None:
    produced = Counting(list(range(6)), pause=0.005)  # each next() well past "quick"
    source = ThreadedIterator(produced)
    with anyio.fail_after(5):
        items = [item async for item in source]
    assert items == list(range(6))
    assert source.round_trips == 7  # six items and the end, none held for another


async def test_an_error_after_some_items_comes_after_them() -> None:
    def produce() -> Iterator[int]:
        yield from range(50)
        raise ValueError("boom")

    source = ThreadedIterator(produce())
    seen: list[int] = []
    with anyio.fail_after(5), pytest.raises(ValueError, match="boom"):  # noqa: PT012
        async for item in source:
            seen.append(item)
    assert seen == list(range(50))
    with anyio.fail_after(5), pytest.raises(StopAsyncIteration):
        await anext(source)  # finished, like a generator after it raised


async def test_a_big_chunk_is_not_batched_past_the_high_water_mark() -> None:
    chunk = b"x" * (64 * 1024)
    source = ThreadedIterator(iter([chunk] * 8))
    with anyio.fail_after(5):
        assert [item async for item in source] == [chunk] * 8
    assert source.round_trips == 9


async def test_a_finished_generator_is_closed_without_waiting_for_a_thread() -> None:
    source = ThreadedIterator(x for x in ["a"])
    with anyio.fail_after(5):
        assert [item async for item in source] == ["a"]
    closing = source.aclose()
    with pytest.raises(StopIteration):  # done at its first step: nothing awaited
        closing.send(None)
    assert source.closed


async def test_a_quick_item_is_not_held_for_a_slow_one_after_a_turn() -> None:
    # Quick items grow the allowance; then the producer pauses before every
    # other item. Each slow next() sets the allowance back to one, so the quick
    # item after it comes alone instead of waiting for the next pause.
    def produce() -> Iterator[str]:
        yield from ("quick" for _ in range(200))
        for _ in range(20):
            time.sleep(0.003)
            yield "after a pause"
            yield "right after it"

    source = ThreadedIterator(produce())
    with anyio.fail_after(10):
        head = [await anext(source) for _ in range(200)]
        trips = source.round_trips
        tail = [item async for item in source]
    assert head == ["quick"] * 200
    assert tail == ["after a pause", "right after it"] * 20
    assert source.round_trips - trips >= 39  # one per item (but the first) and the end


async def test_closing_needs_no_thread_from_the_busy_pool() -> None:
    loop_thread = threading.get_ident()
    closed_in: list[int] = []

    def produce() -> Iterator[str]:
        try:
            yield "first"
            yield "second"
        finally:
            closed_in.append(threading.get_ident())

    source = ThreadedIterator(produce())
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = 1
    with anyio.fail_after(5):
        assert await anext(source) == "first"
        other_streams = object()
        limiter.acquire_on_behalf_of_nowait(other_streams)  # the pool's only thread is taken
        try:
            await source.aclose()
        finally:
            limiter.release_on_behalf_of(other_streams)
    assert source.closed and closed_in and closed_in[0] != loop_thread


async def test_a_client_leaving_while_every_worker_thread_is_busy_closes_the_producer() -> None:
    # The producer is parked at a yield, its next next() queued behind a pool
    # whose every thread is busy (here: one thread, taken by a stand-in for
    # other streams). The client leaves: closing must not wait for a pool
    # thread, and the producer's ``finally`` must run in a worker thread, never
    # on the event loop (where a garbage-collected generator would run it).
    loop_thread = threading.get_ident()
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = 2
    other_streams = object()
    closed_in: list[int] = []

    def take_every_thread() -> None:
        limiter.acquire_on_behalf_of_nowait(other_streams)  # this next() holds the other
        limiter.total_tokens = 1  # so none is free once it returns

    def produce() -> Iterator[bytes]:
        try:
            anyio.from_thread.run_sync(take_every_thread)
            yield b"first\n"
            yield b"second\n"
        finally:
            closed_in.append(threading.get_ident())

    app = StreamingResponse(produce(), commit_deadline=0, cleanup_timeout=1)
    try:
        with anyio.fail_after(5):
            async with StreamingClient(app).stream("GET", "/") as response:
                async for chunk in response.iter_chunks():
                    assert chunk == b"first\n"
                    break
                await response.disconnect()
            outcome = await app.wait_for_outcome()
    finally:
        limiter.release_on_behalf_of(other_streams)
    assert outcome.reason is EndReason.CLIENT_DISCONNECTED
    assert not outcome.cleanup_timed_out
    assert closed_in and closed_in[0] != loop_thread
