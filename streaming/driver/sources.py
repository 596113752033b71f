"""Producers as the driver sees them: async iterators it can always close."""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

import anyio
import anyio.to_thread


class ThreadedIterator:
    """An async iterator over a sync one, each ``next()`` run in a worker thread.

    A blocking producer (``time.sleep``, a file, a database cursor) therefore
    never stalls the event loop. Cancellation cannot interrupt a thread, so
    closing is a handshake under a lock: if a ``next()`` is running, the worker
    closes the iterator itself as soon as it returns; otherwise ``aclose()``
    closes it, and a worker that starts later sees the request and does nothing.
    Either way the producer's ``finally`` runs even if we stop waiting for it.
    """

    def __init__(self, iterator: Iterator[Any]) -> None:
        self._iterator = iterator
        self._lock = threading.Lock()
        self._running = False  # a next() is running in a worker thread
        self._wanted = False  # the driver awaits a next(), queued or running
        self._close_requested = False
        self._closed = threading.Event()
        self._close_error: BaseException | None = None

    def __aiter__(self) -> ThreadedIterator:
        return self

    async def __anext__(self) -> Any:
        self._wanted = True
        try:
            item = await anyio.to_thread.run_sync(self._next_in_thread, abandon_on_cancel=True)
        finally:
            self._wanted = False
        if item is _EXHAUSTED:
            raise StopAsyncIteration
        return item

    def _next_in_thread(self) -> Any:
        with self._lock:
            if self._close_requested:
                return _EXHAUSTED
            self._running = True
        try:
            return next(self._iterator, _EXHAUSTED)
        finally:
            with self._lock:
                self._running = False
                close_here = self._close_requested
            if close_here:
                self._close_in_thread()

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
        if close_now:
            await anyio.to_thread.run_sync(self._close_in_thread, abandon_on_cancel=True)
        else:
            # The waiting thread gives up by itself at the limit: none is left behind.
            await anyio.to_thread.run_sync(self._closed.wait, wait_limit, abandon_on_cancel=True)
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
    def running(self) -> bool:
        """True while the driver waits for a ``next()``, running in a worker
        thread or queued for one (all threads busy): the producer is busy."""
        return self._wanted


_EXHAUSTED = object()

ContentStream = AsyncIterable[Any] | Iterable[Any]


def open_source(content: ContentStream) -> AsyncIterator[Any]:
    """Return an async iterator over ``content``: async generators as they are,
    other async iterables behind ``TrackedIterator``, sync iterables threaded.

    The driver's keep-alive look tells "waiting for the producer" from "blocked
    in send()" by the generator's ``ag_running`` (or the wrappers' ``running``),
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

    __slots__ = ("_iterator", "running")

    def __init__(self, iterator: AsyncIterator[Any]) -> None:
        self._iterator = iterator
        self.running = False

    def __aiter__(self) -> TrackedIterator:
        return self

    async def __anext__(self) -> Any:
        self.running = True
        try:
            return await self._iterator.__anext__()
        finally:
            self.running = False

    async def aclose(self) -> None:
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def producer_busy(source: object) -> bool:
    """True if the producer is working (awaiting inside, or its thread running),
    False if it is parked at a yield, which means the driver is in ``send()``."""
    if isinstance(source, ThreadedIterator | TrackedIterator):
        return source.running
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
