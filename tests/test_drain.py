"""The ``Drain`` handle itself: its defaults, its report and its log line. How it
is wired to servers is in test_drain_wiring.py; streams ending with the final
event in test_sse_response.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import anyio
import pytest

from streaming import Drain, DrainReport, EventSourceResponse, StreamingConfigError
from streaming.drain import SHUTDOWN_EVENT
from streaming.testing import StreamingClient


def test_the_defaults() -> None:
    drain = Drain()
    assert drain.final is SHUTDOWN_EVENT
    assert drain.grace == 5.0
    assert drain.open_streams == 0


@pytest.mark.parametrize("grace", [None, 0, -1, float("nan")])
def test_grace_must_be_a_positive_number_of_seconds(grace: object) -> None:
    with pytest.raises(StreamingConfigError, match=r"^grace must be a finite number of seconds"):
        Drain(grace=grace)  # type: ignore[arg-type]


async def idle() -> AsyncIterator[str]:
    yield "a"
    await anyio.sleep_forever()


async def test_the_report_counts_streams_drained_in_time_and_late_ones(
        caplog: pytest.LogCaptureFixture) -> None:
    drain = Drain(grace=0.5)
    reading = EventSourceResponse(idle(), drain=drain, send_timeout=None)
    # buffer=1 and nobody reading: its final event cannot be delivered in time.
    stuck = EventSourceResponse(idle(), drain=drain, send_timeout=None)
    with anyio.fail_after(5), caplog.at_level(logging.INFO, logger="streaming"):
        async with StreamingClient(reading).stream("GET", "/") as response, \
                StreamingClient(stuck, buffer=1).stream("GET", "/"):
            await response.next_chunk()
            await anyio.wait_all_tasks_blocked()
            async with anyio.create_task_group() as group:
                group.start_soon(response.read)
                report = await drain.drain()
    assert report == DrainReport(drained=1, late=1)
    assert await drain.wait_for_drain() is report
    assert "drained 1 stream(s); 1 still open after 0.5 s" in caplog.messages


async def test_a_drain_whose_first_caller_was_cancelled_is_over_for_the_next() -> None:
    drain = Drain(grace=30)
    with drain.track(lambda final: None):  # a stream slow to end
        with anyio.CancelScope() as scope:
            scope.cancel()  # the first caller gives up (a lifespan's own timeout, say)
            await drain.drain()
    with anyio.fail_after(5):
        second = await drain.drain()  # shutdown code, later: the drain is over
    assert second == DrainReport(drained=0, late=1)
    assert await drain.wait_for_drain() is second
