"""An item that arrives after the client left: dropped always, a warning only for
a producer that yields inside a handler of its cancellation, once per producer."""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest

from streaming import EndReason, EventSourceResponse, StreamingResponse, StreamingWarning
from streaming._types import ASGIApp, Message, Receive, Scope, Send
from streaming.testing import StreamingClient


def wake_on_disconnect(app: ASGIApp, event: anyio.Event) -> ASGIApp:
    """Set ``event`` at the moment the app receives ``http.disconnect``: the
    producer's ``await event.wait()`` then completes in the same loop iteration
    as the disconnect, the race the servers' load runs hit."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def racing_receive() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                event.set()
            return message

        await app(scope, racing_receive, send)

    return wrapped


async def test_an_await_completing_with_the_disconnect_is_not_a_mistake() -> None:
    for _ in range(10):  # trio schedules a batch in random order: try several
        woken, closed = anyio.Event(), anyio.Event()

        async def waits(woken: anyio.Event = woken, closed: anyio.Event = closed,
                        ) -> AsyncIterator[str]:
            try:
                yield "first"
                await woken.wait()
                yield "raced"  # an ordinary yield, reached before the cancellation
                await anyio.sleep_forever()
            finally:
                closed.set()

        app = StreamingResponse(waits(), commit_deadline=0)
        with anyio.fail_after(5), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            client = StreamingClient(wake_on_disconnect(app, woken))
            async with client.stream("GET", "/", disconnect_after=1) as response:
                await response.read()
            outcome = await app.wait_for_outcome()
        assert [w for w in caught if issubclass(w.category, StreamingWarning)] == []
        assert closed.is_set() and outcome.reason is EndReason.CLIENT_DISCONNECTED
        assert response.body == b"first"


@pytest.mark.parametrize("batch", [False, True])
async def test_a_yield_in_an_except_of_the_cancellation_warns(batch: bool) -> None:
    async def catches() -> AsyncIterator[str]:
        yield "first"
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            yield "caught"
            raise

    app = EventSourceResponse(catches(), commit_deadline=0, batch=batch)
    with anyio.fail_after(5), pytest.warns(StreamingWarning, match=r"catches\(\) yielded"):
        async with StreamingClient(app).stream("GET", "/", disconnect_after=1) as response:
            await response.read()
    assert b"caught" not in response.body


async def test_a_yield_in_a_handler_inside_the_cancellations_handler_warns() -> None:
    async def nested() -> AsyncIterator[str]:
        yield "first"
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            try:
                raise ValueError("cleanup failed")
            except ValueError:
                yield "late"  # the cancellation is this handler's context's context
            raise

    app = EventSourceResponse(nested(), commit_deadline=0)
    with anyio.fail_after(5), pytest.warns(StreamingWarning, match=r"nested\(\) yielded"):
        async with StreamingClient(app).stream("GET", "/", disconnect_after=1) as response:
            await response.read()


async def test_a_yield_in_an_except_of_its_own_error_is_not_warned(
        caplog: pytest.LogCaptureFixture) -> None:
    """The producer handles its own error by yielding an error item; the client
    left while it was working: that item is dropped, and nothing is wrong."""
    woken = anyio.Event()

    async def handles_its_error() -> AsyncIterator[str]:
        yield "first"
        try:
            await woken.wait()
            raise LookupError("the data is gone")
        except LookupError:
            yield "error item"
        await anyio.sleep_forever()

    app = StreamingResponse(handles_its_error(), commit_deadline=0)
    with anyio.fail_after(5), warnings.catch_warnings(record=True) as caught, \
            caplog.at_level(logging.ERROR, logger="streaming"):
        warnings.simplefilter("always")
        client = StreamingClient(wake_on_disconnect(app, woken))
        async with client.stream("GET", "/", disconnect_after=1) as response:
            await response.read()
        await app.wait_for_outcome()
    assert [w for w in caught if issubclass(w.category, StreamingWarning)] == []
    assert caplog.messages == []  # closed cleanly, nothing logged either


async def test_the_same_mistake_is_shown_once_not_once_per_stream() -> None:
    async def yields_in_finally() -> AsyncIterator[str]:
        try:
            yield "first"
            await anyio.sleep_forever()
        finally:
            yield "bye"

    with anyio.fail_after(5), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own default: once per location
        for _ in range(3):
            app = StreamingResponse(yields_in_finally(), commit_deadline=0)
            async with StreamingClient(app).stream("GET", "/", disconnect_after=1) as response:
                await response.read()
    shown = [w for w in caught if issubclass(w.category, StreamingWarning)]
    assert len(shown) == 1
    assert shown[0].filename == __file__  # it points at the producer


def sync_yields_in_finally() -> Iterator[str]:
    # Three in the try: the worker thread pulls up to two at its second trip,
    # so whenever the client's leave is seen, the generator is parked at a
    # yield inside the try, and the close meets the yield in finally.
    try:
        yield "first"
        yield "second"
        yield "third"
    finally:
        yield "bye"


async def test_a_plain_generator_that_yields_in_finally_is_warned_at_its_code() -> None:
    app = StreamingResponse(sync_yields_in_finally(), commit_deadline=0)
    # Parked in send() when the client leaves (2.4: send() raises), so the
    # close meets the yield in finally, in the producer's thread.
    client = StreamingClient(app, buffer=0, spec_version="2.4")
    with anyio.fail_after(5), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with client.stream("GET", "/", disconnect_after=1) as response:
            await response.read()
        await app.wait_for_outcome()
    shown = [w for w in caught if issubclass(w.category, StreamingWarning)]
    assert [(str(w.message), w.filename, w.lineno) for w in shown] == [(
        "the producer sync_yields_in_finally() yielded after the client disconnected (a yield "
        "inside finally or except?); the chunk was dropped and the producer closed",
        __file__, inspect.getsourcelines(sync_yields_in_finally)[1])]


async def test_a_producer_that_raises_while_closed_is_logged_not_warned(
        caplog: pytest.LogCaptureFixture) -> None:
    async def fails_to_clean_up() -> AsyncIterator[str]:
        try:
            yield "a"
            yield "b"
        finally:
            raise RuntimeError("cleanup failed")  # a RuntimeError, but no yield

    app = StreamingResponse(fails_to_clean_up(), commit_deadline=0)
    # Parked in send() when the client leaves (2.4: send() raises), so the
    # driver's aclose() meets the error in finally.
    client = StreamingClient(app, buffer=0, spec_version="2.4")
    with anyio.fail_after(5), warnings.catch_warnings(record=True) as caught, \
            caplog.at_level(logging.ERROR, logger="streaming"):
        warnings.simplefilter("always")
        async with client.stream("GET", "/", disconnect_after=1) as response:
            await response.read()
        await app.wait_for_outcome()
    assert [w for w in caught if issubclass(w.category, StreamingWarning)] == []
    assert caplog.messages == ["the producer raised while being closed"]
