"""Opportunistic batching: fewer messages for a fast producer, never a held chunk."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from streaming import (
    ContentTypeError,
    EndReason,
    EventSourceResponse,
    NDJSONResponse,
    SSEParser,
    StreamingResponse,
)
from streaming.testing import StreamingClient


def body_messages(response: object) -> list[bytes]:
    return [bytes(m.message["body"]) for m in response.messages  # type: ignore[attr-defined]
            if m.direction == "send" and m.message["type"] == "http.response.body"]


async def fast(count: int) -> AsyncIterator[bytes]:
    for i in range(count):
        yield b"%015d\n" % i


async def test_a_fast_producer_is_sent_in_few_messages_with_the_same_bytes() -> None:
    expected = b"".join([b"%015d\n" % i for i in range(10_000)])
    app = StreamingResponse(fast(10_000), batch=True)
    with anyio.fail_after(5):
        response = await StreamingClient(app).get("/")
    assert response.body == expected
    messages = body_messages(response)
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
    parsed = SSEParser().feed(response.body)
    assert [e.data for e in parsed] == [f"event {i}" for i in range(1000)]
    assert len(body_messages(response)) < 50
