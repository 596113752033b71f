"""Graceful drain: end every open stream with a final message, then close it.

A server that shuts down waits for open connections, and an event stream never
ends by itself, so without a drain a shutdown either hangs until the server's
grace timeout or cuts every stream. ``Drain`` is an explicit handle: responses
given ``drain=`` register with it while they run; ``await drain.drain()``
cancels each producer (its ``finally`` runs), sends the final message and the
terminator, and waits for all of them, at most ``grace`` seconds.

Wiring to a server, without patching it: ``Drain.watch_signals()`` (or
``Drain.lifespan`` as a Starlette ``lifespan``) chains a handler in front of the
server's own SIGTERM/SIGINT handler when the app starts. The handler only
writes a byte to a socket pair (safe in a signal handler, and backend-neutral:
a task waiting on the socket starts the drain on asyncio and trio alike) and
then calls the server's handler, so the server's shutdown proceeds as usual
and finds the streams already finishing.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import anyio

from streaming.encoders.sse import ServerSentEvent
from streaming.exceptions import StreamingConfigError

logger = logging.getLogger("streaming")

SHUTDOWN_EVENT = ServerSentEvent(event="shutdown", data="the server is shutting down")


@dataclass(frozen=True, slots=True)
class DrainReport:
    """How a drain went: streams that ended with the final message in time, and
    streams still running when the grace period ran out."""

    drained: int
    late: int


class Drain:
    """A handle that ends every registered stream with ``final``.

    ``final`` is an item the stream's own format encodes (for event streams a
    ``ServerSentEvent``; the default announces a shutdown). Streams that start
    while draining get the final message at once and end.
    """

    def __init__(self, final: object = SHUTDOWN_EVENT, grace: float = 5.0) -> None:
        if type(grace) not in (int, float) or not grace > 0 or grace == float("inf"):
            raise StreamingConfigError(f"grace must be a finite number of seconds, not {grace!r}")
        self.final = final
        self.grace = grace
        self._stops: dict[int, Callable[[object], None]] = {}
        self._finished: dict[int, anyio.Event] = {}
        self._draining = False
        self._default_action: signal.Signals | None = None
        self._report: DrainReport | None = None
        self._done: anyio.Event | None = None  # made on first use: it needs a loop

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def open_streams(self) -> int:
        return len(self._stops)

    @contextmanager
    def track(self, stop: Callable[[object], None]) -> Any:
        """Register a running stream; ``stop(final)`` must end it. Used by
        responses; a stream that registers while draining is stopped at once."""
        key = id(stop)
        finished = anyio.Event()
        self._stops[key], self._finished[key] = stop, finished
        if self._draining:
            stop(self.final)
        try:
            yield
        finally:
            del self._stops[key], self._finished[key]
            finished.set()

    async def drain(self) -> DrainReport:
        """Stop every stream and wait for them, at most ``grace`` seconds."""
        self._draining = True
        waiting = list(self._finished.values())
        for stop in list(self._stops.values()):
            stop(self.final)
        with anyio.move_on_after(self.grace):
            for finished in waiting:
                await finished.wait()
        late = sum(not finished.is_set() for finished in waiting)
        logger.info("drained %d stream(s); %d still open after %.1f s",
                    len(waiting) - late, late, self.grace)
        self._report = DrainReport(len(waiting) - late, late)
        self._done_event().set()
        return self._report

    async def wait_for_drain(self) -> DrainReport:
        """Wait until a drain (started anywhere, by a signal say) has finished."""
        await self._done_event().wait()
        assert self._report is not None
        return self._report

    def _done_event(self) -> anyio.Event:
        if self._done is None:
            self._done = anyio.Event()
        return self._done

    @asynccontextmanager
    async def watch_signals(
        self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
    ) -> AsyncIterator[None]:
        """Drain when one of ``signals`` arrives, then let the server's own
        handler run. Install it after the server installed its handlers: from
        the app's lifespan startup, which is what ``Drain.lifespan`` does."""
        if threading.current_thread() is not threading.main_thread():
            logger.warning("signals can only be watched from the main thread; "
                           "call Drain.drain() from your shutdown code instead")
            yield
            return
        wake_reader, wake_writer = socket.socketpair()
        wake_writer.setblocking(False)
        previous = {sig: signal.getsignal(sig) for sig in signals}

        def handler(signum: int, frame: FrameType | None) -> None:
            with contextlib.suppress(OSError):  # full buffer: a wake-up is pending
                wake_writer.send(b"\0")
            chained = previous[signal.Signals(signum)]
            if callable(chained):
                chained(signum, frame)
            elif chained == signal.SIG_DFL:
                self._default_action = signal.Signals(signum)  # taken after the drain

        for sig in signals:
            signal.signal(sig, handler)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._drain_on_wake_up, wake_reader)
                yield
                group.cancel_scope.cancel()
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
            wake_reader.close()
            wake_writer.close()

    async def _drain_on_wake_up(self, wake_reader: socket.socket) -> None:
        await anyio.wait_readable(wake_reader)
        await self.drain()
        if self._default_action is not None:
            # No server handler to chain to: do what the signal would have done.
            signal.signal(self._default_action, signal.SIG_DFL)
            signal.raise_signal(self._default_action)

    @asynccontextmanager
    async def lifespan(self, app: object) -> AsyncIterator[None]:
        """A Starlette ``lifespan``: watch SIGTERM and SIGINT while the app runs."""
        async with self.watch_signals():
            yield
