"""Producers as the driver sees them: async iterators it can always close."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Iterator
from types import GeneratorType
from typing import Any

import anyio
import anyio.to_thread

#: A ``next()`` that returns within this is quick: worth batching with the next one.
QUICK_NEXT = 0.000_2
#: No item waits longer than this in the worker thread for the quick ones after it.
HOLD = 0.000_5
#: At most this many items, or this many bytes of ``bytes``/``str``, per round trip.
MAX_BATCH = 1024
HIGH_WATER = 64 * 1024


class ThreadedIterator:
    """An async iterator over a sync one, its ``next()`` run in worker threads.

    A blocking producer (``time.sleep``, a file, a database cursor) therefore
    never stalls the event loop. A round trip to a worker thread costs far more
    than a chunk, so one trip pulls several items while ``next()`` is quick:
    the first trip pulls one (it commits the headers), each trip whose every
    ``next()`` was quick doubles the next one's allowance (up to ``MAX_BATCH``),
    and a trip ends as soon as one ``next()`` is slow, its first item has waited
    ``HOLD``, or ``HIGH_WATER`` bytes are in hand. A slow ``next()`` also sets the
    allowance back to one, so a producer that pauses between items (a sleep, a
    query) gets one item per trip and none of its items waits for a later one.
    What is held back: the items already in hand when a quick producer turns
    slow, once per turn, for the length of that one ``next()``.

    Cancellation cannot interrupt a thread, so closing is a handshake under a
    lock: if a ``next()`` is running, the worker closes the iterator itself as
    soon as it returns; otherwise ``aclose()`` closes it in a thread of its own
    (never waiting for one of the shared pool, which may all be busy), and a
    worker that starts later sees the request and does nothing. Either way the
    producer's ``finally`` runs in a worker thread, never on the event loop,
    even if we stop waiting for it.
    """

    def __init__(self, iterator: Iterator[Any]) -> None:
        self._iterator = iterator
        self._ready: list[Any] = []  # pulled, not handed out yet, last first
        self._end: BaseException | None = None  # raised once _ready is empty
        self._exhausted = False
        self._allowance = 1
        self._lock = threading.Lock()
        self._running = False  # a next() is running in a worker thread
        self._awaited = False  # the driver awaits a next(), queued or running
        self._close_requested = False
        self._closed = threading.Event()
        self._close_error: BaseException | None = None
        self.round_trips = 0  # trips to a worker thread so far: what batching saves

    def __aiter__(self) -> ThreadedIterator:
        return self

    async def __anext__(self) -> Any:
        ready = self._ready
        if ready:
            return ready.pop()
        if self._exhausted:
            raise StopAsyncIteration
        if self._end is not None:  # the error that ended the last trip
            end, self._end = self._end, None
            self._exhausted = True
            raise end
        self._awaited = True
        self.round_trips += 1
        try:
            ready = await anyio.to_thread.run_sync(self._pull_in_thread, abandon_on_cancel=True)
        finally:
            self._awaited = False
        if not ready:
            self._exhausted = True
            raise StopAsyncIteration
        self._ready = ready
        return ready.pop()

    def _pull_in_thread(self) -> list[Any]:
        with self._lock:
            if self._close_requested:
                return []
            self._running = True
        try:
            return self._pull()
        finally:
            with self._lock:
                self._running = False
                close_here = self._close_requested
            if close_here:
                self._close_in_thread()

    def _pull(self) -> list[Any]:
        """Pull one item, then more while ``next()`` is quick; the list comes
        back reversed, so the event loop hands items out with ``pop()``."""
        iterator, clock, limit = self._iterator, time.perf_counter, self._allowance
        started = clock()
        item = next(iterator, _EXHAUSTED)  # an error here is raised at once
        if item is _EXHAUSTED:
            return []
        now = clock()
        quick = now - started < QUICK_NEXT
        items, size, count = [item], _size(item), 1
        append, hold_until = items.append, now + HOLD
        # The loop is the cost of every item a sync producer makes: locals only,
        # one clock read, no Python call but next().
        while quick and count < limit and size < HIGH_WATER and now < hold_until:
            if self._close_requested:
                break
            before = now
            try:
                item = next(iterator, _EXHAUSTED)
            except BaseException as exc:  # raised once the items before it are out
                self._end = exc
                break
            now = clock()
            if item is _EXHAUSTED:
                self._end = StopAsyncIteration()  # a fresh one, raised once
                break
            append(item)
            count += 1
            if isinstance(item, (bytes, str)):  # a tuple: faster than bytes | str
                size += len(item)
            quick = now - before < QUICK_NEXT
        if not quick:
            self._allowance = 1
        elif count == limit:
            self._allowance = min(2 * limit, MAX_BATCH)
        items.reverse()
        return items

    def _close_in_thread(self) -> None:
        try:
            close = getattr(self._iterator, "close", None)
            if close is not None:
                close()
        except BaseException as exc:  # handed to aclose(), which re-raises it
            self._close_error = exc
        finally:
            self._closed.set()

    async def aclose(self, wait_limit: float = 5.0) -> None:
        """Close the iterator in a worker thread and wait, at most ``wait_limit`` seconds."""
        with self._lock:
            if self._close_requested:
                return
            self._close_requested = True
            close_now = not self._running
        if close_now and _finished_generator(self._iterator):
            self._closed.set()  # nothing left to run: no thread needed
            return
        # A limiter of our own: the shared pool may be full of blocked next()s
        # (other streams'), and the close must not queue behind them. The thread
        # that waits gives up by itself at the limit: none is left behind.
        own = anyio.CapacityLimiter(1)
        if close_now:
            await anyio.to_thread.run_sync(self._close_in_thread, abandon_on_cancel=True,
                                           limiter=own)
        else:
            await anyio.to_thread.run_sync(self._closed.wait, wait_limit, abandon_on_cancel=True,
                                           limiter=own)
        if self._close_error is not None:
            raise self._close_error

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def iterator(self) -> Iterator[Any]:
        """The sync iterator being run in worker threads."""
        return self._iterator

    @property
    def busy(self) -> bool:
        """True while the driver waits for a ``next()``, running in a worker
        thread or queued for one (all threads busy): the producer is busy
        (``_running`` says only whether a thread has it)."""
        return self._awaited


def _size(item: object) -> int:
    return len(item) if isinstance(item, bytes | str) else 0


def _finished_generator(iterator: object) -> bool:
    # close() on a finished generator is a no-op; any other iterator (a file)
    # may still hold something that close() releases.
    return isinstance(iterator, GeneratorType) and iterator.gi_frame is None

_EXHAUSTED = object()

ContentStream = AsyncIterable[Any] | Iterable[Any]


def open_source(content: ContentStream) -> AsyncIterator[Any]:
    """Return an async iterator over ``content``: async generators as they are,
    other async iterables behind ``TrackedIterator``, sync iterables threaded.

    The driver's keep-alive look tells "waiting for the producer" from "blocked
    in send()" by the generator's ``ag_running`` (or the wrappers' ``busy``),
    which costs nothing per chunk for generators.
    """
    if isinstance(content, AsyncGenerator):
        return content
    if isinstance(content, AsyncIterable):
        return TrackedIterator(content.__aiter__())
    return ThreadedIterator(iter(content))


class TrackedIterator:
    """An async iterator that is not a generator (a memory stream, an SDK's
    stream object), with the busy flag a generator has built in, and closed
    even if it was never iterated."""

    __slots__ = ("_iterator", "busy")

    def __init__(self, iterator: AsyncIterator[Any]) -> None:
        self._iterator = iterator
        self.busy = False  # inside __anext__: an async generator's ag_running

    def __aiter__(self) -> TrackedIterator:
        return self

    async def __anext__(self) -> Any:
        self.busy = True
        try:
            return await self._iterator.__anext__()
        finally:
            self.busy = False

    async def aclose(self) -> None:
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def producer_busy(source: object) -> bool:
    """True if the producer is working (awaiting inside, or its thread running),
    False if it is parked at a yield, which means the driver is in ``send()``."""
    if isinstance(source, ThreadedIterator | TrackedIterator):
        return source.busy
    return bool(getattr(source, "ag_running", True))


async def close_source(source: object, wait_limit: float) -> None:
    """Close a source if it can be closed, sync or async."""
    if isinstance(source, ThreadedIterator):
        await source.aclose(wait_limit)
        return
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()
        return
    close = getattr(source, "close", None)
    if close is not None:
        await anyio.to_thread.run_sync(close)
