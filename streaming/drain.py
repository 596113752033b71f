"""Graceful drain: end every open stream with a final message, then close it.

A server that shuts down waits for open connections, and an event stream never
ends by itself, so without a drain a shutdown either hangs until the server's
grace timeout or cuts every stream. ``Drain`` is an explicit handle: responses
given ``drain=`` register with it while they run; ``await drain.drain()``
cancels each producer (its ``finally`` runs), sends the final message and the
terminator, and waits for all of them, at most ``grace`` seconds.

Wiring to a server, without patching it, through whatever tells this process
that the server is shutting down:

- ``Drain.lifespan`` (a Starlette ``lifespan``; ``Drain.watch_server()`` for
  any other lifespan) watches from the app's startup on. It chains a handler
  in front of the server's own SIGTERM/SIGINT handler (uvicorn, Granian's
  workers, hypercorn ``--workers 0``). The handler only writes a byte to a
  socket pair (safe in a signal handler, and backend-neutral: a task waiting
  on the socket starts the drain on asyncio and trio alike) and then calls the
  server's handler, so the server's shutdown proceeds as usual and finds the
  streams already finishing.
- In a hypercorn worker under hypercorn's parent process (its default mode)
  the worker gets no signal: the parent sets a multiprocessing event that the
  worker polls every 0.1 s (``hypercorn/run.py``). ``watch_server`` polls the
  same event at the same pace.
- A server that sends no lifespan events (Daphne) gets a handler when the
  first stream registers, if the server has a SIGTERM handler of its own.
  Daphne cancels every application as soon as its handler runs, so this
  handler keeps the server's handler for after the drain: it hands the drain
  to the event loop (from a short-lived thread, through anyio's thread-safe
  entry) and then calls the server's handler.
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
from typing import Any, Protocol

import anyio
import anyio.from_thread
import anyio.lowlevel

from streaming._checks import check_seconds
from streaming.encoders.sse import ServerSentEvent

logger = logging.getLogger("streaming")

#: How often a hypercorn worker looks at its parent's shutdown event: the pace
#: hypercorn's own worker keeps (``hypercorn.utils.check_multiprocess_shutdown_event``).
_PARENT_POLL_INTERVAL = 0.1

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
        check_seconds("grace", grace, none_ok=False)
        self.final = final
        self.grace = grace
        self._stops: dict[int, Callable[[object], None]] = {}
        self._finished: dict[int, anyio.Event] = {}
        self._draining = False
        self._default_action: signal.Signals | None = None
        self._watched = 0  # how many watch_signals() are open
        self._armed = False  # the first stream looked for a server to watch
        self._report: DrainReport | None = None
        self._done: anyio.Event | None = None  # made on first use: it needs a loop

    @property
    def open_streams(self) -> int:
        return len(self._stops)

    @contextmanager
    def track(self, stop: Callable[[object], None]) -> Any:
        """Register a running stream; ``stop(final)`` must end it. Used by
        responses; a stream that registers while draining is stopped at once."""
        if not self._watched and not self._armed:
            self._arm_on_first_stream()
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
        """Start the drain and wait for it to finish: stop every stream, then
        wait for them, at most ``grace`` seconds. A drain happens once: a
        later call (a second signal, shutdown code after a signal) starts
        nothing and waits for the same report (``wait_for_drain``)."""
        if self._draining:
            return await self.wait_for_drain()
        self._draining = True
        waiting = list(self._finished.values())
        for stop in list(self._stops.values()):
            stop(self.final)
        try:
            with anyio.move_on_after(self.grace):
                for finished in waiting:
                    await finished.wait()
        finally:  # a cancelled first call still ends the drain, for later callers
            late = sum(not finished.is_set() for finished in waiting)
            self._report = DrainReport(len(waiting) - late, late)
            self._done_event().set()
        logger.info("drained %d stream(s); %d still open after %.1f s",
                    len(waiting) - late, late, self.grace)
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
    async def watch_server(
        self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
    ) -> AsyncIterator[None]:
        """Drain when the server starts shutting down: on one of ``signals``
        (see ``watch_signals``) or, in a hypercorn worker under hypercorn's
        parent, when the parent tells the worker to stop. Enter it from the
        app's lifespan startup, as ``Drain.lifespan`` does."""
        async with self.watch_signals(signals), anyio.create_task_group() as group:
            parent_says_stop = _hypercorn_shutdown_event()
            if parent_says_stop is not None:
                group.start_soon(self._drain_when_set, parent_says_stop)
            yield
            group.cancel_scope.cancel()

    @asynccontextmanager
    async def watch_signals(
        self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
    ) -> AsyncIterator[None]:
        """Drain when one of ``signals`` arrives, then let the server's own
        handler run. Install it after the server installed its handlers: from
        the app's lifespan startup, which is what ``Drain.lifespan`` does. A
        signal the process ignores (``SIG_IGN``) stays ignored."""
        if threading.current_thread() is not threading.main_thread():
            logger.warning("signals can only be watched from the main thread; "
                           "call Drain.drain() from your shutdown code instead")
            yield
            return
        wake_reader, wake_writer = socket.socketpair()
        wake_writer.setblocking(False)
        previous = _handlers_of(signals)

        def handler(signum: int, frame: FrameType | None) -> None:
            with contextlib.suppress(OSError):  # full buffer: a wake-up is pending
                wake_writer.send(b"\0")
            chained = previous[signal.Signals(signum)]
            if callable(chained):
                chained(signum, frame)
            elif chained == signal.SIG_DFL:
                self._default_action = signal.Signals(signum)  # taken after the drain

        for sig in previous:
            signal.signal(sig, handler)
        self._watched += 1
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._drain_on_wake_up, wake_reader)
                yield
                group.cancel_scope.cancel()
        finally:
            self._watched -= 1
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

    async def _drain_when_set(self, event: _SetOnce) -> None:
        # A multiprocessing event set by another process: nothing here can be
        # woken by it, so look at it as often as hypercorn's worker does.
        while not event.is_set():  # noqa: ASYNC110
            await anyio.sleep(_PARENT_POLL_INTERVAL)
        await self.drain()

    def _arm_on_first_stream(self) -> None:
        """For servers that send no lifespan events (Daphne): when the first
        stream registers and nothing watches yet, chain a handler in front of
        the server's own SIGTERM/SIGINT handler. It runs the drain first and
        the server's handler after it, since Daphne's handler cancels every
        application at once. Nothing happens where the server installed no
        handler (an in-process test client, a worker thread)."""
        self._armed = True
        if threading.current_thread() is not threading.main_thread():
            return
        previous = {sig: old for sig, old in _handlers_of((signal.SIGTERM, signal.SIGINT)).items()
                    if callable(old) and old is not signal.default_int_handler}
        if signal.SIGTERM not in previous:
            return
        token = anyio.lowlevel.current_token()

        def handler(signum: int, frame: FrameType | None) -> None:
            for sig, old in previous.items():  # a second signal goes to the server at once
                signal.signal(sig, old)
            server_handler = previous[signal.Signals(signum)]
            threading.Thread(target=self._drain_from_thread, args=(token, server_handler, signum),
                             name="streaming-drain", daemon=True).start()

        for sig in previous:
            signal.signal(sig, handler)

    def _drain_from_thread(self, token: anyio.lowlevel.EventLoopToken,
                           server_handler: Callable[[int, FrameType | None], Any],
                           signum: int) -> None:
        try:
            anyio.from_thread.run(self._drain_then_call, server_handler, signum, token=token)
        except Exception:  # the loop is gone: the server is stopping anyway
            logger.exception("could not drain on signal %d", signum)

    async def _drain_then_call(self, server_handler: Callable[[int, FrameType | None], Any],
                               signum: int) -> None:
        try:
            await self.drain()
        finally:
            server_handler(signum, None)

    @asynccontextmanager
    async def lifespan(self, app: object) -> AsyncIterator[None]:
        """A Starlette ``lifespan``: drain when the server shuts down (see
        ``watch_server``) while the app runs."""
        async with self.watch_server():
            yield


class _SetOnce(Protocol):
    def is_set(self) -> bool: ...


def _handlers_of(signals: tuple[signal.Signals, ...]) -> dict[signal.Signals, Any]:
    """The current handler of each of ``signals`` that the process does not ignore."""
    handlers = {sig: signal.getsignal(sig) for sig in signals}
    return {sig: old for sig, old in handlers.items() if old != signal.SIG_IGN}


def _hypercorn_shutdown_event() -> _SetOnce | None:
    """The event hypercorn's parent process sets to stop this worker, if this
    process is such a worker. hypercorn (``hypercorn/run.py``) starts each
    worker with ``Process(target=worker, kwargs={..., "shutdown_event": ...})``
    and takes SIGTERM in the parent only; the worker polls the event. The
    spawned worker's own ``Process`` object still holds those arguments: read
    them, change nothing."""
    import multiprocessing  # only when watching: most apps never need it

    process = multiprocessing.current_process()
    target = getattr(process, "_target", None)
    if not getattr(target, "__module__", "").startswith("hypercorn."):
        return None
    event = getattr(process, "_kwargs", {}).get("shutdown_event")
    return event if callable(getattr(event, "is_set", None)) else None
