"""How a ``Drain`` learns that the server is shutting down, in process.

The servers themselves are in tests/test_server_matrix.py (hypercorn's parent
event, Daphne's missing lifespan); here, the handler a drain arms when the
first stream registers and no lifespan watches: on SIGTERM it drains first
and calls the server's own handler after, and it arms nothing where the
server installed no handler.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from types import FrameType

import anyio
import pytest

from streaming import Drain, EventSourceResponse, ServerSentEvent
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
