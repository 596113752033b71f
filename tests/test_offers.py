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
    first until it is opened; ``fail`` makes the next body send raise, before
    the gate, ``fail_late`` after it; ``attempts`` records every body message
    as it comes, ``ended`` how each send that waited at the gate ended."""

    bodies: list[bytes] = field(default_factory=list)
    tasks: list[int] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    gate: anyio.Event | None = None
    fail: BaseException | None = None
    fail_late: BaseException | None = None
    attempts: list[bytes] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    blocked: anyio.Event = field(default_factory=anyio.Event)
    left: anyio.Event = field(default_factory=anyio.Event)
    _more: anyio.Event = field(default_factory=anyio.Event)

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] != "http.response.body":
            return
        self.attempts.append(message["body"])
        if self.bodies and self.fail is not None:
            error, self.fail = self.fail, None
            raise error
        if self.bodies and self.gate is not None and message["body"]:
            self.blocked.set()
            try:
                await self.gate.wait()
            except BaseException as exc:
                self.ended.append(type(exc).__name__)  # thrown into the send, as it should be
                raise
            finally:
                self.ended.append("closed")
            if self.fail_late is not None:
                error, self.fail_late = self.fail_late, None
                raise error
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


def needs_asyncio(anyio_backend: str) -> None:
    if anyio_backend == "trio":
        pytest.skip("no offers on trio (test_an_offer_is_sent_from_the_callers_task checks it)")


async def stalled(group: anyio.abc.TaskGroup, body: bytes = b"slow\n", **policy: Any
                  ) -> tuple[Stream, anyio.Event, Finish]:
    """A stream whose offer of ``body`` has to wait at the server's closed gate."""
    stream = await started(group, **policy)
    assert stream.offer is not None
    gate = stream.server.gate = anyio.Event()
    finish = stream.offer(body)
    assert isinstance(finish, Finish)
    return stream, gate, finish


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
    needs_asyncio(anyio_backend)
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
    needs_asyncio(anyio_backend)
    async with anyio.create_task_group() as group:
        stream, gate, finish = await stalled(group)
        assert stream.offer is not None
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
    needs_asyncio(anyio_backend)
    async with anyio.create_task_group() as group:
        stream, _, finish = await stalled(group, send_timeout=0.2)  # the client reads no more
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
    needs_asyncio(anyio_backend)
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
    needs_asyncio(anyio_backend)
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


async def test_a_cancelled_offered_send_is_cancelled_inside_and_a_ping_never_overlaps_it(
        anyio_backend: str) -> None:
    """A stalled offered send: no keep-alive is even tried while it waits (one
    send at a time), and the send timeout's cancellation is thrown into it."""
    needs_asyncio(anyio_backend)
    async with anyio.create_task_group() as group:
        stream, _, finish = await stalled(group, b"stuck\n", ping_interval=0.02,
                                          send_timeout=0.3)  # the gate is never opened
        await stream.items.send(finish)
        with anyio.fail_after(5):
            await stream.done.wait()                     # some 15 looks later
    assert stream.outcome is not None and stream.outcome.reason is EndReason.SEND_TIMEOUT
    assert stream.server.attempts == [b"first\n", b"stuck\n"]  # no ping tried meanwhile
    assert stream.server.ended == ["CancelledError", "closed"]


async def test_an_offered_send_the_stream_never_took_up_is_closed_when_it_ends(
        anyio_backend: str) -> None:
    needs_asyncio(anyio_backend)
    async with anyio.create_task_group() as group:
        # Never given to the producer, still referenced (as the hub's subscription holds it).
        stream, _, held = await stalled(group, b"stuck\n")
        stream.server.left.set()
        with anyio.fail_after(5):
            await stream.done.wait()
        assert stream.server.ended == ["GeneratorExit", "closed"]  # closed, not left to gc
        assert isinstance(held, Finish)  # while it is still referenced here
    assert stream.outcome is not None
    assert stream.outcome.reason is EndReason.CLIENT_DISCONNECTED


async def test_a_client_that_leaves_while_an_offered_send_waits_is_a_disconnect(
        anyio_backend: str) -> None:
    needs_asyncio(anyio_backend)
    async with anyio.create_task_group() as group:
        stream, gate, finish = await stalled(group)
        stream.server.fail_late = OSError("the client left while the send waited")
        await stream.items.send(finish)
        await anyio.wait_all_tasks_blocked()
        gate.set()
        with anyio.fail_after(5):
            await stream.done.wait()
    assert stream.outcome is not None
    assert stream.outcome.reason is EndReason.CLIENT_DISCONNECTED
    assert stream.outcome.error is None and stream.outcome.chunks_sent == 1


async def test_a_send_wrapper_setting_a_context_variable_works_across_the_wait(
        anyio_backend: str) -> None:
    """Every step of an offered send runs in one context: a wrapper that sets
    a context variable and resets it after ``send()`` resets it where it set it."""
    needs_asyncio(anyio_backend)
    server = Server()
    inner = server.send

    async def wrapped(message: dict[str, Any]) -> None:
        token = WHO.set("wrapper")
        try:
            await inner(message)
        finally:
            WHO.reset(token)

    driver = Driver(server.receive, wrapped, SSEFormat(), 200, [],  # type: ignore[arg-type]
                    StreamPolicy(commit_deadline=None))
    send, receive = anyio.create_memory_object_stream[object](10)
    stream = Stream(server, driver, driver.accept_offers(), send)
    async with anyio.create_task_group() as group:
        group.start_soon(run, stream, receive)
        with anyio.fail_after(5):
            await server.wait_for(1)
            await anyio.wait_all_tasks_blocked()
        assert stream.offer is not None
        gate = server.gate = anyio.Event()
        finish = stream.offer(b"slow\n")
        assert isinstance(finish, Finish)
        await stream.items.send(finish)
        await anyio.wait_all_tasks_blocked()
        gate.set()
        with anyio.fail_after(5):
            await server.wait_for(2)
        server.left.set()
    assert stream.outcome is not None
    assert stream.outcome.reason is EndReason.CLIENT_DISCONNECTED  # not a ValueError from reset
    assert server.seen == ["wrapper", "wrapper"]
