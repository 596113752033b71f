"""Offers (``streaming/driver/offers.py``): a body message sent from the
publisher's task while the stream waits for its producer.

Each test runs a real ``Driver`` over a hand-written ASGI send that records
which task called it; the producer is a generator fed through a memory
stream, so the test decides when it waits. Offers are asyncio's only: on
trio ``accept_offers`` says no and the stream works as without them.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream

from streaming import EndReason, Outcome
from streaming.driver import Driver, Finish, StreamPolicy
from streaming.formats import SSEFormat

#: What the stream's own task sees; the test's task keeps another value.
WHO = contextvars.ContextVar("WHO", default="publisher")


@dataclass
class Server:
    """An ASGI server's side of one response: ``send`` records each body and
    the task that sent it; ``gate`` (when set) holds body messages after the
    first until it is opened; ``fail`` makes the next body send raise."""

    bodies: list[bytes] = field(default_factory=list)
    tasks: list[int] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    gate: anyio.Event | None = None
    fail: BaseException | None = None
    blocked: anyio.Event = field(default_factory=anyio.Event)
    left: anyio.Event = field(default_factory=anyio.Event)
    _more: anyio.Event = field(default_factory=anyio.Event)

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] != "http.response.body":
            return
        if self.bodies and self.fail is not None:
            error, self.fail = self.fail, None
            raise error
        if self.bodies and self.gate is not None and message["body"]:
            self.blocked.set()
            await self.gate.wait()
        self.bodies.append(message["body"])
        self.tasks.append(anyio.get_current_task().id)
        self.seen.append(WHO.get())
        self._more.set()

    async def wait_for(self, count: int) -> None:
        """Until ``count`` bodies have been sent (bounded by the caller)."""
        while len(self.bodies) < count:
            self._more = anyio.Event()
            await self._more.wait()

    async def receive(self) -> dict[str, Any]:
        await self.left.wait()
        return {"type": "http.disconnect"}


async def producer(items: MemoryObjectReceiveStream[object]) -> AsyncIterator[bytes]:
    """Yields what it is sent; awaits a ``Finish`` it is sent (as the hub does)."""
    WHO.set("stream")
    yield b"first\n"
    async for item in items:
        if isinstance(item, Finish):
            await item
        else:
            assert isinstance(item, bytes)
            yield item


@dataclass
class Stream:
    server: Server
    driver: Driver
    offer: Callable[[bytes], object] | None
    items: Any
    task: int = 0
    outcome: Outcome | None = None
    done: anyio.Event = field(default_factory=anyio.Event)


def make(server: Server, **policy: Any) -> tuple[Stream, MemoryObjectReceiveStream[object]]:
    driver = Driver(server.receive, server.send, SSEFormat(), 200, [],  # type: ignore[arg-type]
                    StreamPolicy(**{"commit_deadline": None, **policy}))
    send, receive = anyio.create_memory_object_stream[object](10)
    return Stream(server, driver, driver.accept_offers(), send), receive


async def run(stream: Stream, items: MemoryObjectReceiveStream[object]) -> None:
    stream.task = anyio.get_current_task().id
    try:
        stream.outcome = await stream.driver.run(producer(items))
    finally:
        stream.done.set()


async def started(group: anyio.abc.TaskGroup, **policy: Any) -> Stream:
    stream, items = make(Server(), **policy)
    group.start_soon(run, stream, items)
    with anyio.fail_after(5):
        await stream.server.wait_for(1)
        await anyio.wait_all_tasks_blocked()  # the pump waits for the producer
    return stream


async def test_an_offer_is_sent_from_the_callers_task(anyio_backend: str) -> None:
    async with anyio.create_task_group() as group:
        stream = await started(group)
        if anyio_backend == "trio":
            assert stream.offer is None  # a wait there names its task: no offers
            stream.server.left.set()
            return
        assert stream.offer is not None
        assert stream.offer(b"one\n") is True and stream.offer(b"two\n") is True
        assert stream.server.bodies == [b"first\n", b"one\n", b"two\n"]
        me = anyio.get_current_task().id
        assert stream.server.tasks[1:] == [me, me] != [stream.task] * 2
        assert stream.server.seen[1:] == ["stream", "stream"]  # the stream's context
        await stream.items.send(b"three\n")                     # and the usual way after
        with anyio.fail_after(5):
            await stream.server.wait_for(4)
        stream.server.left.set()
        with anyio.fail_after(5):
            await stream.done.wait()
    assert stream.outcome is not None
    assert stream.outcome.reason is EndReason.CLIENT_DISCONNECTED
    assert stream.outcome.chunks_sent == 4
    assert stream.outcome.bytes_sent == len(b"first\none\ntwo\nthree\n")


async def test_an_offer_is_refused_unless_the_stream_waits_for_its_producer(
        anyio_backend: str) -> None:
    if anyio_backend == "trio":
        pytest.skip("no offers on trio (test_an_offer_is_sent_from_the_callers_task)")
    stream, _ = make(Server())
    assert stream.offer is not None
    assert stream.offer(b"early\n") is False                 # before the first chunk
    stream, _ = make(Server(), batch=True)
    assert stream.offer is None                               # batching holds chunks: none
    async with anyio.create_task_group() as group:
        stream = await started(group)
        assert stream.offer is not None
        stream.server.left.set()
        with anyio.fail_after(5):
            await stream.done.wait()
        assert stream.offer(b"late\n") is False               # after the end
    assert b"early\n" not in stream.server.bodies and b"late\n" not in stream.server.bodies


async def test_an_offered_send_that_waits_is_finished_in_the_streams_task(
        anyio_backend: str) -> None:
    if anyio_backend == "trio":
        pytest.skip("no offers on trio")
    async with anyio.create_task_group() as group:
        stream = await started(group)
        assert stream.offer is not None
        gate = stream.server.gate = anyio.Event()
        finish = stream.offer(b"slow\n")
        assert isinstance(finish, Finish)
        assert stream.offer(b"next\n") is False      # one send at a time: the producer yields it
        await stream.items.send(finish)
        await stream.items.send(b"next\n")
        await anyio.wait_all_tasks_blocked()
        assert stream.server.bodies == [b"first\n"]  # still waiting on the client
        gate.set()
        with anyio.fail_after(5):
            await stream.server.wait_for(3)
        assert stream.server.bodies == [b"first\n", b"slow\n", b"next\n"]
        assert stream.server.tasks[1] == stream.task  # its rest ran in the stream's task
        stream.server.gate = None
        await anyio.wait_all_tasks_blocked()
        assert stream.offer(b"again\n") is True       # offers again once it is done
        stream.server.left.set()
    assert stream.outcome is not None and stream.outcome.chunks_sent == 4


async def test_an_offered_send_stuck_on_the_client_times_out(anyio_backend: str) -> None:
    if anyio_backend == "trio":
        pytest.skip("no offers on trio")
    async with anyio.create_task_group() as group:
        stream = await started(group, send_timeout=0.2)
        assert stream.offer is not None
        stream.server.gate = anyio.Event()             # never opened: the client reads no more
        finish = stream.offer(b"stuck\n")
        assert isinstance(finish, Finish)
        await stream.items.send(finish)
        with anyio.fail_after(5):
            await stream.done.wait()
    assert stream.outcome is not None
    assert stream.outcome.reason is EndReason.SEND_TIMEOUT
    assert stream.outcome.chunks_sent == 1


@pytest.mark.parametrize("error", [OSError("gone"), RuntimeError("server bug")])
async def test_a_failed_offered_send_ends_the_stream_as_the_stream_own_would(
        anyio_backend: str, error: BaseException) -> None:
    """``OSError`` from ``send()`` is the client leaving; any other error is
    the server's, raised to the producer that awaits the ``Finish``, and the
    stream ends as when its own send raised it."""
    if anyio_backend == "trio":
        pytest.skip("no offers on trio")
    async with anyio.create_task_group() as group:
        stream = await started(group)
        assert stream.offer is not None
        stream.server.fail = error
        sent = stream.offer(b"doomed\n")
        if isinstance(error, OSError):
            assert sent is True
        else:
            assert isinstance(sent, Finish)
            await stream.items.send(sent)
        with anyio.fail_after(5):
            await stream.done.wait()
    assert stream.outcome is not None
    if isinstance(error, OSError):
        assert stream.outcome.reason is EndReason.CLIENT_DISCONNECTED
    else:
        assert stream.outcome.reason is EndReason.PRODUCER_ERROR
        assert stream.outcome.error is error
    assert stream.outcome.chunks_sent == 1


async def test_no_offer_is_taken_while_a_keepalive_is_being_sent(anyio_backend: str) -> None:
    if anyio_backend == "trio":
        pytest.skip("no offers on trio")
    async with anyio.create_task_group() as group:
        stream = await started(group, ping_interval=0.05)
        assert stream.offer is not None
        stream.server.gate = gate = anyio.Event()      # the ping waits on the client
        with anyio.fail_after(5):
            await stream.server.blocked.wait()
        assert stream.offer(b"meanwhile\n") is False
        stream.server.gate = None
        gate.set()
        with anyio.fail_after(5):
            await stream.server.wait_for(2)             # the ping went out
            await anyio.wait_all_tasks_blocked()
        assert stream.offer(b"after\n") is True
        stream.server.left.set()
    assert b"meanwhile\n" not in stream.server.bodies and b"after\n" in stream.server.bodies
