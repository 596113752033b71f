"""How a ``Drain`` learns that the server is shutting down, in process.

The servers themselves are in tests/test_server_matrix.py (hypercorn's parent
event, Daphne's missing lifespan); here, the handler a drain arms when the
first stream registers and no lifespan watches: on SIGTERM it drains first
and calls the server's own handler after, and it arms nothing where the
server installed no handler.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import types
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from types import FrameType

import anyio
import anyio.lowlevel
import pytest

from streaming import Drain, EventSourceResponse, ServerSentEvent
from streaming.drain import _hypercorn_shutdown_event
from streaming.testing import StreamingClient

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs POSIX signals")


@contextmanager
def sigterm_handler(handler: signal.Handlers | object) -> Iterator[None]:
    old = signal.signal(signal.SIGTERM, handler)  # type: ignore[arg-type]
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


async def idle_stream() -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(data="first")
    await anyio.sleep_forever()


async def test_with_no_lifespan_the_first_stream_arms_a_drain_that_runs_before_the_server() -> None:
    drain = Drain(grace=2)
    server_called = anyio.Event()
    seen_by_server: list[bool] = []

    def server_handler(signum: int, frame: FrameType | None) -> None:
        # Daphne's handler cancels every application: it must come after the drain.
        seen_by_server.append(drain.open_streams == 0)
        server_called.set()

    with sigterm_handler(server_handler):
        app = EventSourceResponse(idle_stream(), drain=drain)
        with anyio.fail_after(5):
            async with StreamingClient(app).stream("GET", "/") as response:
                await response.next_chunk()
                signal.raise_signal(signal.SIGTERM)
                body = await response.read()
                await server_called.wait()
            assert signal.getsignal(signal.SIGTERM) is server_handler  # handed back
    assert b"event: shutdown" in body
    assert seen_by_server == [True]
    assert (await drain.wait_for_drain()).drained == 1


async def test_where_the_server_installed_no_handler_nothing_is_armed() -> None:
    drain = Drain(grace=1)
    with sigterm_handler(signal.SIG_DFL):
        app = EventSourceResponse(idle_stream(), drain=drain)
        with anyio.fail_after(5):
            async with StreamingClient(app).stream("GET", "/") as response:
                await response.next_chunk()
                assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


async def test_a_signal_the_process_ignores_stays_ignored() -> None:
    drain = Drain(grace=1)
    old = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        with anyio.fail_after(5):
            async with drain.watch_server((signal.SIGUSR1,)):
                assert signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGUSR1, old)


async def test_a_second_drain_call_waits_for_the_first_and_stops_nothing_again() -> None:
    drain = Drain(grace=5)
    stops: list[object] = []
    leave = anyio.Event()

    def stop(final: object) -> None:
        stops.append(final)
        leave.set()

    async def stream() -> None:
        with drain.track(stop):
            await leave.wait()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(stream)
            await anyio.wait_all_tasks_blocked()
            first = await drain.drain()
            second = await drain.drain()  # a second SIGTERM, or shutdown code after one
    assert first is second and first.drained == 1
    assert stops == [drain.final]


async def test_the_first_stream_arms_once_and_the_server_gets_its_signal_number() -> None:
    drain = Drain(grace=2)
    server_got: list[int] = []
    server_called = anyio.Event()

    drain_threads: list[threading.Thread] = []

    def server_handler(signum: int, frame: FrameType | None) -> None:
        # Called from the loop while the thread that handed it the drain waits:
        # a daemon, so a server that exits without the loop is not held up.
        drain_threads.extend(t for t in threading.enumerate() if t.name == "streaming-drain")
        server_got.append(signum)
        server_called.set()

    with sigterm_handler(server_handler):
        first, second = (EventSourceResponse(idle_stream(), drain=drain) for _ in range(2))
        with anyio.fail_after(5):
            async with StreamingClient(first).stream("GET", "/") as one:
                await one.next_chunk()
                armed = signal.getsignal(signal.SIGTERM)
                async with StreamingClient(second).stream("GET", "/") as two:
                    await two.next_chunk()
                    assert signal.getsignal(signal.SIGTERM) is armed  # not chained twice
                    signal.raise_signal(signal.SIGTERM)
                    await two.read()
                await one.read()
                await server_called.wait()
    assert server_got == [signal.SIGTERM]
    assert [t.daemon for t in drain_threads] == [True]
    assert (await drain.wait_for_drain()).drained == 2


async def test_a_signal_with_no_handler_drains_then_takes_its_default_action() -> None:
    """SIGWINCH's default action is to do nothing, so the process survives the
    re-raised signal; SIGTERM would take the same path and end the process."""
    drain = Drain(grace=1)
    old = signal.signal(signal.SIGWINCH, signal.SIG_DFL)
    try:
        with anyio.fail_after(5):
            async with drain.watch_signals((signal.SIGWINCH,)):
                assert signal.getsignal(signal.SIGWINCH) != signal.SIG_DFL
                signal.raise_signal(signal.SIGWINCH)
                assert (await drain.wait_for_drain()).drained == 0
                await anyio.wait_all_tasks_blocked()  # the re-raise follows the drain
                assert signal.getsignal(signal.SIGWINCH) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGWINCH, old)


class ParentEvent:
    """What a hypercorn worker's parent hands it: an event with ``is_set``
    (multiprocessing's, set from another process); here, set by the test."""

    def __init__(self) -> None:
        self.set = False
        self.polled = anyio.Event()

    def is_set(self) -> bool:
        self.polled.set()
        return self.set


def hypercorn_worker(monkeypatch: pytest.MonkeyPatch, target: object = None,
                     **kwargs: object) -> None:
    """Make this process look like a worker started by hypercorn's parent
    (``hypercorn/run.py``: ``Process(target=worker_func, kwargs={...})``)."""
    from hypercorn.asyncio.run import asyncio_worker

    process = types.SimpleNamespace(_target=target or asyncio_worker, _kwargs=kwargs)
    monkeypatch.setattr(multiprocessing, "current_process", lambda: process)


async def test_a_hypercorn_worker_drains_when_its_parent_sets_the_event(
        monkeypatch: pytest.MonkeyPatch) -> None:
    parent = ParentEvent()
    hypercorn_worker(monkeypatch, shutdown_event=parent, config=None, sockets=None)
    drain = Drain(grace=1)
    app = EventSourceResponse(idle_stream(), drain=drain)
    with anyio.fail_after(5):
        async with drain.watch_server((signal.SIGUSR1,)), \
                StreamingClient(app).stream("GET", "/") as response:
            await response.next_chunk()
            await parent.polled.wait()
            assert b"shutdown" not in response.body  # polled, not set: nothing yet
            parent.set = True
            report = await drain.wait_for_drain()
            body = await response.read()
    assert report.drained == 1
    assert b"event: shutdown" in body


@pytest.mark.parametrize(("target", "kwargs"), [
    pytest.param(None, {"shutdown_event": "not an event"}, id="no is_set"),
    pytest.param(None, {}, id="no shutdown_event"),
    pytest.param(idle_stream, {"shutdown_event": threading.Event()}, id="not hypercorn's worker"),
])
def test_only_hypercorns_worker_with_an_event_is_watched(
        monkeypatch: pytest.MonkeyPatch, target: object, kwargs: dict[str, object]) -> None:
    hypercorn_worker(monkeypatch, target, **kwargs)
    assert _hypercorn_shutdown_event() is None


def test_hypercorns_event_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    event = threading.Event()
    hypercorn_worker(monkeypatch, shutdown_event=event)
    assert _hypercorn_shutdown_event() is event


def test_a_drain_signalled_after_its_loop_ended_logs_and_does_not_raise(
        caplog: pytest.LogCaptureFixture) -> None:
    async def token() -> anyio.lowlevel.EventLoopToken:
        return anyio.lowlevel.current_token()

    gone = anyio.run(token)
    called: list[int] = []
    with caplog.at_level(logging.ERROR, logger="streaming"):
        Drain()._drain_from_thread(gone, lambda signum, frame: called.append(signum),
                                   signal.SIGTERM)
    assert [r.getMessage() for r in caplog.records] == ["could not drain on signal 15"]
    assert called == []  # the server is stopping anyway: its handler is not ours to call
