"""Opportunistic batching: fewer messages for a fast producer, never a held chunk."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from streaming import (
    ContentTypeError,
    EndReason,
    EventSourceResponse,
    NDJSONResponse,
    StreamingResponse,
)
from streaming._types import Message, Scope
from streaming.driver import Driver, ServerSend
from streaming.driver.batching import BURST, HIGH_WATER
from streaming.testing import StreamingClient


async def fast(count: int) -> AsyncIterator[bytes]:
    for i in range(count):
        yield b"%015d\n" % i


async def test_a_fast_producer_is_sent_in_few_messages_with_the_same_bytes() -> None:
    expected = b"".join([b"%015d\n" % i for i in range(10_000)])
    app = StreamingResponse(fast(10_000), batch=True)
    with anyio.fail_after(5):
        response = await StreamingClient(app).get("/")
    assert response.body == expected
    messages = response.body_messages()
    assert len(messages) < 100  # 10,000 chunks of 16 B: a few 64 KiB batches
    assert app.outcome is not None and app.outcome.chunks_sent == 10_000


async def test_no_chunk_waits_for_a_later_one() -> None:
    """The producer waits for the client to have seen each chunk before making
    the next: if batching held a chunk back, this would deadlock."""
    seen = [anyio.Event() for _ in range(5)]

    async def lockstep() -> AsyncIterator[str]:
        for i in range(5):
            yield f"{i}\n"
            await seen[i].wait()

    app = StreamingResponse(lockstep(), batch=True)
    with anyio.fail_after(5):
        async with StreamingClient(app).stream("GET", "/") as response:
            async for chunk in response.iter_chunks():
                seen[int(chunk)].set()
    assert response.body == b"0\n1\n2\n3\n4\n"


async def test_error_after_commit_flushes_ready_chunks_then_marks() -> None:
    async def produce() -> AsyncIterator[dict[str, int]]:
        for i in range(3):
            yield {"n": i}
        raise ValueError("broken")

    client = StreamingClient(NDJSONResponse(produce(), batch=True), raise_app_exceptions=False)
    with anyio.fail_after(5):
        response = await client.get("/")
    lines = response.body.splitlines()
    assert lines[:3] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert b'"error"' in lines[3]
    assert not response.complete


async def test_error_before_first_chunk_is_still_a_status() -> None:
    async def produce() -> AsyncIterator[bytes]:
        raise PermissionError("no")
        yield b""

    with anyio.fail_after(5):
        response = await StreamingClient(StreamingResponse(produce(), batch=True)).get("/")
    assert response.status_code == 500


async def test_bad_chunk_index_is_exact() -> None:
    async def produce() -> AsyncIterator[object]:
        yield b"a"
        yield b"b"
        yield 3.5

    client = StreamingClient(StreamingResponse(produce(), batch=True))
    with anyio.fail_after(5), pytest.raises(ContentTypeError, match="chunk 2 has type float"):
        await client.get("/")


@pytest.mark.parametrize("spec", ["2.3", "2.4"])
async def test_disconnect_closes_the_producer(spec: str) -> None:
    closed = anyio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x" * 1000
        finally:
            closed.set()

    app = StreamingResponse(endless(), batch=True)
    client = StreamingClient(app, spec_version=spec, buffer=2)  # type: ignore[arg-type]
    with anyio.fail_after(5):
        async with client.stream("GET", "/", disconnect_after=3) as response:
            await response.read()
        outcome = await app.wait_for_outcome()
    assert closed.is_set()
    assert outcome.reason is EndReason.CLIENT_DISCONNECTED


async def test_sse_events_stay_whole_when_batched() -> None:
    async def events() -> AsyncIterator[str]:
        for i in range(1000):
            yield f"event {i}"

    with anyio.fail_after(5):
        response = await StreamingClient(EventSourceResponse(events(), batch=True)).get("/")
    parsed = response.events()
    assert [e.data for e in parsed] == [f"event {i}" for i in range(1000)]
    assert len(response.body_messages()) < 50


async def test_a_burst_is_sent_while_the_producer_waits_after_it(hand_offs: list[int]) -> None:
    """Bursts longer than BURST are held; the producer then waits until the
    client has seen the burst's last chunk: held chunks must be handed off
    when it starts to wait, or this deadlocks."""
    seen = [anyio.Event() for _ in range(4)]

    async def bursts() -> AsyncIterator[bytes]:
        for burst in range(4):
            for i in range(3 * BURST):
                yield b"%d.%02d\n" % (burst, i)
            await seen[burst].wait()

    app = StreamingResponse(bursts(), batch=True)
    with anyio.fail_after(5):
        async with StreamingClient(app).stream("GET", "/") as response:
            async for _ in response.iter_chunks():
                if response.body.endswith(b".%02d\n" % (3 * BURST - 1)):
                    seen[response.body.count(b".00\n") - 1].set()
    lines = response.body.splitlines()
    assert lines == [b"%d.%02d" % (b, i) for b in range(4) for i in range(3 * BURST)]
    assert len(response.body_messages()) < len(lines) // 2  # held, not one per chunk
    # One task per burst, with what came after the BURST sent one by one (the
    # first burst's first chunk is the response's first, sent on its own).
    assert hand_offs == [2 * BURST - 1] + [2 * BURST] * 3


@pytest.fixture
def hand_offs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many held batches went out from a task of their own, by size."""
    sizes: list[int] = []
    original = Driver._send_handed

    async def counted(self: Driver, batch: list[bytes | memoryview], done: anyio.Event) -> None:
        sizes.append(len(batch))
        await original(self, batch, done)

    monkeypatch.setattr(Driver, "_send_handed", counted)
    return sizes


async def test_batching_starts_no_task_on_a_stream_that_waits_between_chunks(
        hand_offs: list[int]) -> None:
    """An event stream's producer waits after each event: each is sent at
    once, no task is made for it, and the response runs with the listener as
    its only child task, as without batching."""
    counts: dict[bool, int] = {}
    for batch in (False, True):
        go_on = anyio.Event()

        async def events(go_on: anyio.Event) -> AsyncIterator[str]:
            for i in range(BURST * 3):
                yield f"event {i}"
                await anyio.lowlevel.checkpoint()  # waits, briefly, after every event
            await go_on.wait()

        app = EventSourceResponse(events(go_on), batch=batch)
        with anyio.fail_after(5):
            async with StreamingClient(app).stream("GET", "/") as response:
                async for _ in response.iter_chunks():
                    if b"event %d\n" % (BURST * 3 - 1) in response.body:
                        await anyio.wait_all_tasks_blocked()
                        counts[batch] = len(anyio.get_running_tasks())
                        go_on.set()
        assert len(response.body_messages()) == BURST * 3 + 1  # one per event, then the end
    assert counts[True] == counts[False]
    assert hand_offs == []


async def test_a_waiting_producer_is_cancelled_through_the_stepping() -> None:
    closed = anyio.Event()

    async def burst_then_wait() -> AsyncIterator[bytes]:
        try:
            for i in range(3 * BURST):
                yield b"x%d\n" % i
            await anyio.sleep_forever()
        finally:
            closed.set()

    app = StreamingResponse(burst_then_wait(), batch=True)
    with anyio.fail_after(5):
        async with StreamingClient(app).stream("GET", "/") as response:
            async for _ in response.iter_chunks():
                if response.body.endswith(b"x%d\n" % (3 * BURST - 1)):
                    break
        outcome = await app.wait_for_outcome()
    assert closed.is_set()
    assert outcome.reason is EndReason.CLIENT_DISCONNECTED


async def test_a_sync_producer_is_batched_too() -> None:
    def rows() -> Iterator[bytes]:
        for i in range(5000):
            yield b"%015d\n" % i

    app = StreamingResponse(rows(), batch=True)
    with anyio.fail_after(10):
        response = await StreamingClient(app).get("/")
    assert response.body == b"".join(b"%015d\n" % i for i in range(5000))
    assert len(response.body_messages()) < 500
    assert app.outcome is not None and app.outcome.chunks_sent == 5000


async def test_held_chunks_go_out_before_an_error_and_the_index_is_exact() -> None:
    count = 3 * BURST

    async def then_broken() -> AsyncIterator[object]:
        for i in range(count):
            yield {"n": i}
        raise ValueError("broken")

    client = StreamingClient(NDJSONResponse(then_broken(), batch=True),
                             raise_app_exceptions=False)
    with anyio.fail_after(5):
        response = await client.get("/")
    lines = response.body.splitlines()
    assert lines[:count] == [b'{"n":%d}' % i for i in range(count)]
    assert b'"error"' in lines[count] and len(lines) == count + 1

    async def then_bad() -> AsyncIterator[object]:
        for _ in range(count):
            yield b"a"
        yield 3.5

    client = StreamingClient(StreamingResponse(then_bad(), batch=True))
    with anyio.fail_after(5), pytest.raises(ContentTypeError, match=f"chunk {count} has type"):
        await client.get("/")


async def test_held_chunks_go_out_at_exactly_high_water() -> None:
    """A producer that never waits: after the first chunk and BURST more one
    by one, every message is HIGH_WATER bytes exactly (chunks of a size that
    divides it), counted from zero again after each."""
    size = 1024
    assert HIGH_WATER % size == 0

    async def never_waits() -> AsyncIterator[bytes]:
        for _ in range(1 + BURST + 3 * HIGH_WATER // size):
            yield b"x" * size

    with anyio.fail_after(5):
        response = await StreamingClient(StreamingResponse(never_waits(), batch=True)).get("/")
    sizes = [len(m["body"]) for m in response.body_messages()]
    assert sizes == [size] * (BURST + 1) + [HIGH_WATER] * 3 + [0]


@pytest.mark.parametrize("app", [
    lambda source: StreamingResponse(source, batch=True),
    lambda source: EventSourceResponse(source, batch=True),
], ids=["text", "sse"])
async def test_an_empty_producer_completes_an_empty_body(app: Any) -> None:
    async def nothing() -> AsyncIterator[str]:
        return
        yield

    response_app = app(nothing())
    with anyio.fail_after(5):
        response = await StreamingClient(response_app).get("/")
    assert (response.status_code, response.body) == (200, b"")
    assert response_app.outcome.reason is EndReason.COMPLETED


# -- the pump's own harness: a server whose send() the test scripts ------------

SCOPE: Scope = {"type": "http", "method": "GET", "path": "/", "headers": []}


async def never_receive() -> Message:
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


async def sent_by(app: StreamingResponse) -> list[Message]:
    """Every message ``app`` sends to a server that takes each at once."""
    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)

    with anyio.fail_after(5):
        await app(SCOPE, never_receive, send)
    return messages


async def burst_then_wait() -> AsyncIterator[bytes]:
    """3 * BURST chunks at once (some of them held), then a wait that never
    ends: whatever is held goes out from a hand-off task."""
    for i in range(3 * BURST):
        yield b"x%02d\n" % i
    await anyio.sleep_forever()


async def test_a_server_error_in_a_hand_off_fails_the_stream_as_in_the_pump() -> None:
    async def refuses_batches(message: Message) -> None:
        if message["type"] == "http.response.body" and len(message["body"]) > 4:
            raise RuntimeError("the server refused the body")  # not OSError: not a leave

    app = StreamingResponse(burst_then_wait(), batch=True)
    with anyio.fail_after(5), pytest.raises(RuntimeError, match="refused the body"):
        await app(SCOPE, never_receive, refuses_batches)
    assert app.outcome is not None and app.outcome.reason is EndReason.PRODUCER_ERROR
    assert isinstance(app.outcome.error, RuntimeError)


async def test_a_hand_off_stuck_in_send_is_timed_while_the_producer_waits() -> None:
    sent = 0

    async def stops_reading(message: Message) -> None:
        nonlocal sent
        sent += 1
        if sent > BURST + 2:  # the hand-off's send never returns
            await anyio.sleep_forever()

    app = StreamingResponse(burst_then_wait(), batch=True, send_timeout=0.5)
    with anyio.fail_after(5):
        await app(SCOPE, never_receive, stops_reading)
    assert app.outcome is not None and app.outcome.reason is EndReason.SEND_TIMEOUT


async def test_empty_chunks_that_never_wait_still_let_the_listener_run() -> None:
    count, sent, left = 200_000, 0, anyio.Event()

    async def never_suspends(message: Message) -> None:
        nonlocal sent
        sent += 1
        if sent == 50:
            left.set()

    async def leaves() -> Message:
        await left.wait()
        return {"type": "http.disconnect"}

    async def empty() -> AsyncIterator[bytes]:
        for _ in range(count):
            yield b""

    app = StreamingResponse(empty(), batch=True)
    with anyio.fail_after(10):
        await app(SCOPE, leaves, never_suspends)
    assert app.outcome is not None and app.outcome.reason is EndReason.CLIENT_DISCONNECTED
    assert app.outcome.chunks_sent < count


@pytest.mark.parametrize("batch", [False, True])
async def test_nothing_follows_a_pathsend_and_the_producer_is_closed_there(
        batch: bool, tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_bytes(b"file")
    ran_on = False

    async def produce() -> AsyncIterator[object]:
        nonlocal ran_on
        yield b"head"
        yield ServerSend({"type": "http.response.pathsend", "path": str(target)}, 4,
                         ends_body=True)
        ran_on = True
        yield b"after"

    app = StreamingResponse(produce(), batch=batch)
    messages = await sent_by(app)
    assert [m["type"] for m in messages][-1] == "http.response.pathsend"
    assert not ran_on  # closed at the yield of the pathsend
    assert app.outcome is not None and app.outcome.reason is EndReason.COMPLETED


async def test_a_piece_the_server_sends_itself_goes_out_in_order_among_batches() -> None:
    piece = ServerSend({"type": "http.response.zerocopysend", "file": 0, "count": 3}, 3)

    async def produce() -> AsyncIterator[object]:
        for i in range(3 * BURST):
            yield b"a%02d\n" % i
        yield piece
        for i in range(3 * BURST):
            yield b"b%02d\n" % i

    app = StreamingResponse(produce(), batch=True)
    messages = await sent_by(app)
    kinds = [m["type"] for m in messages]
    assert kinds.count("http.response.zerocopysend") == 1
    at = kinds.index("http.response.zerocopysend")
    before = b"".join(m.get("body", b"") for m in messages[:at])
    after = b"".join(m.get("body", b"") for m in messages[at + 1:])
    assert before == b"".join(b"a%02d\n" % i for i in range(3 * BURST))
    assert after == b"".join(b"b%02d\n" % i for i in range(3 * BURST))
    assert app.outcome is not None and app.outcome.reason is EndReason.COMPLETED
    assert app.outcome.chunks_sent == 6 * BURST + 1
