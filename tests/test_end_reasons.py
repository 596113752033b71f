"""One writer of the end reason: every way a stream ends, and which reason wins
when two happen (the first one recorded)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio
import pytest

from streaming import Drain, EndReason, EventSourceResponse, ServerSentEvent, StreamRefused
from streaming.driver import Driver, StreamPolicy
from streaming.driver.core import Phase
from streaming.formats import SSEFormat
from streaming.testing import StreamingClient
from streaming.testing.client import SpecVersion


async def two_then_wait() -> AsyncIterator[str]:
    yield "a"
    yield "b"
    await anyio.sleep_forever()


async def two() -> AsyncIterator[str]:
    yield "a"
    yield "b"


async def fails_first() -> AsyncIterator[str]:
    raise StreamRefused(403, "no")
    yield ""


async def fails_after_one() -> AsyncIterator[str]:
    yield "a"
    raise ValueError("broken")


#: (producer, spec version, leave after N chunks, drain after N chunks) ->
#: (reason, headers sent, body complete, status)
CASES = [
    (two, "2.3", None, None, (EndReason.COMPLETED, True, True, 200)),
    (fails_first, "2.3", None, None, (EndReason.PRODUCER_ERROR, True, True, 403)),
    (fails_after_one, "2.3", None, None, (EndReason.PRODUCER_ERROR, True, False, 200)),
    (two_then_wait, "2.3", 2, None, (EndReason.CLIENT_DISCONNECTED, True, False, 200)),
    (two_then_wait, "2.4", 2, None, (EndReason.CLIENT_DISCONNECTED, True, False, 200)),
    (two_then_wait, "2.3", None, 2, (EndReason.DRAINED, True, True, 200)),
]


@pytest.mark.parametrize(("produce", "spec", "leave", "drain_after", "expected"), CASES,
                         ids=lambda value: getattr(value, "__name__", None))
async def test_how_a_stream_ends(
        produce: Callable[[], AsyncIterator[str]], spec: SpecVersion, leave: int | None,
        drain_after: int | None, expected: tuple[EndReason, bool, bool, int]) -> None:
    drain = Drain(final=ServerSentEvent("bye", "shutdown"), grace=5)
    app = EventSourceResponse(produce(), drain=drain, ping=None, commit_deadline=None)
    client = StreamingClient(app, spec_version=spec, raise_app_exceptions=False)
    with anyio.fail_after(5):
        async with client.stream("GET", "/", disconnect_after=leave) as response:
            if drain_after is not None:
                for _ in range(drain_after):
                    await response.next_chunk()
                await drain.drain()
            await response.read()
        outcome = await app.wait_for_outcome()
    assert (outcome.reason, outcome.headers_sent, outcome.body_complete,
            outcome.status_code) == expected


async def test_head_is_its_own_reason() -> None:
    app = EventSourceResponse(two())
    with anyio.fail_after(5):
        await StreamingClient(app).request("HEAD", "/")
    assert app.outcome is not None and app.outcome.reason is EndReason.HEAD


async def noop_send(message: object) -> None:
    pass


async def never_receive() -> dict[str, object]:
    await anyio.sleep_forever()
    return {}


def driver() -> Driver:
    return Driver(never_receive, noop_send, SSEFormat(), 200, [], StreamPolicy())


async def test_the_first_reason_recorded_stays() -> None:
    d = driver()
    d.stop(EndReason.DRAINED, b"bye")
    d.stop(EndReason.CLIENT_DISCONNECTED)  # too late: the drain was first
    with anyio.fail_after(5):
        outcome = await d.run(two())
    assert outcome.reason is EndReason.DRAINED
    assert outcome.body_complete  # the drain's final message and the terminator went out


async def test_a_stream_stopped_by_a_departed_client_sends_no_final_message() -> None:
    sent: list[object] = []

    async def record(message: object) -> None:
        sent.append(message)

    d = Driver(never_receive, record, SSEFormat(), 200, [], StreamPolicy())
    d.stop(EndReason.CLIENT_DISCONNECTED)
    d.stop(EndReason.DRAINED, b"bye")  # the client is gone: nothing to say to it
    with anyio.fail_after(5):
        outcome = await d.run(two())
    assert outcome.reason is EndReason.CLIENT_DISCONNECTED
    assert sent == [] and d.phase is Phase.PENDING


async def test_a_failed_stream_keeps_its_reason_when_the_client_then_leaves() -> None:
    d = driver()
    with anyio.fail_after(5):
        outcome = await d.run(fails_after_one())
    d.stop(EndReason.CLIENT_DISCONNECTED)  # the server's late http.disconnect
    assert outcome.reason is EndReason.PRODUCER_ERROR and d.phase is Phase.STREAMING


async def test_a_drain_does_not_stop_a_stream_whose_terminator_is_on_its_way() -> None:
    drain = Drain(final=ServerSentEvent("bye", "shutdown"), grace=5)
    app = EventSourceResponse(two(), drain=drain, ping=None, commit_deadline=None)
    # a and b fill the "socket" (the start was read): the terminator waits for the reader.
    client = StreamingClient(app, buffer=2)
    with anyio.fail_after(5):
        async with client.stream("GET", "/") as response, anyio.create_task_group() as group:
            await anyio.wait_all_tasks_blocked()
            group.start_soon(drain.drain)
            await anyio.wait_all_tasks_blocked()
            await response.read()
    assert app.outcome is not None and app.outcome.reason is EndReason.COMPLETED
    assert b"bye" not in response.body and response.complete
