"""StreamingResponse through the in-process client: messages, chunk types,
deferred commit, errors, HEAD, background, headers and outcomes."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Generator, Iterator
from inspect import GEN_CLOSED, getgeneratorstate
from typing import Any, ClassVar

import anyio
import anyio.to_thread
import pytest

from streaming import (
    ContentTypeError,
    Drain,
    EndReason,
    HeaderValidationError,
    InvalidContentError,
    NDJSONResponse,
    Outcome,
    ResponseReusedError,
    StreamingConfigError,
    StreamingResponse,
    StreamRefused,
    UnsupportedScopeError,
)
from streaming.testing import StreamingClient


async def letters() -> AsyncIterator[str]:
    for letter in "abc":
        yield letter


async def test_message_sequence() -> None:
    client = StreamingClient(StreamingResponse(letters(), media_type="text/plain"))
    with anyio.fail_after(2):
        response = await client.get("/")
    sent = [m.message for m in response.messages if m.direction == "send"]
    assert sent[0] == {"type": "http.response.start", "status": 200,
                       "headers": [(b"content-type", b"text/plain; charset=utf-8")]}
    assert [(m["body"], m["more_body"]) for m in sent[1:]] == [
        (b"a", True), (b"b", True), (b"c", True), (b"", False)]
    assert b"content-length" not in dict(sent[0]["headers"])


@pytest.mark.parametrize(
    "chunks",
    [[b"a", bytearray(b"b"), memoryview(b"c"), "d"], ["数", "据"]],
)
async def test_chunk_types(chunks: list[bytes | bytearray | memoryview | str]) -> None:
    def produce() -> Iterator[bytes | bytearray | memoryview | str]:
        yield from chunks

    client = StreamingClient(StreamingResponse(produce()))
    with anyio.fail_after(2):
        response = await client.get("/")
    expected = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks)
    assert response.body == expected


async def test_str_chunks_use_the_response_charset() -> None:
    app = StreamingResponse(iter(["数据"]), media_type="text/plain; charset=gbk")
    app.charset = "gbk"
    with anyio.fail_after(2):
        response = await StreamingClient(app).get("/")
    assert response.body == "数据".encode("gbk")
    assert response.headers["content-type"] == "text/plain; charset=gbk"


async def test_bad_chunk_type_names_type_and_index_and_closes_producer() -> None:
    closed = anyio.Event()

    async def produce() -> AsyncIterator[object]:
        try:
            yield "ok"
            yield "ok"
            yield 42
        finally:
            closed.set()

    app = StreamingResponse(produce())
    client = StreamingClient(app)
    with anyio.fail_after(2), pytest.raises(ContentTypeError, match=r"chunk 2 has type int"):
        async with client.stream("GET", "/") as response:
            await response.read()
    assert closed.is_set()
    assert response.body == b"okok"
    assert not response.complete  # cut: no terminating empty body
    assert app.outcome is not None and app.outcome.reason is EndReason.PRODUCER_ERROR


async def test_bad_first_chunk_is_a_500_not_a_cut() -> None:
    app = StreamingResponse(iter([{"not": "bytes"}]))
    with anyio.fail_after(2):
        response = await StreamingClient(app).get("/")
    assert response.status_code == 500
    assert response.body == b"Internal Server Error"
    assert isinstance(app.outcome and app.outcome.error, ContentTypeError)


@pytest.mark.parametrize("content", ["text", b"bytes", bytearray(b"x"), 42, None])
def test_content_that_is_not_an_iterable_of_chunks_is_refused(content: object) -> None:
    with pytest.raises(InvalidContentError):
        StreamingResponse(content)  # type: ignore[arg-type]


async def test_sync_iterators_run_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []

    def produce() -> Iterator[bytes]:
        for _ in range(3):
            seen.append(threading.get_ident())
            yield b"x"

    with anyio.fail_after(2):
        await StreamingClient(StreamingResponse(produce())).get("/")
    assert len(seen) == 3 and loop_thread not in seen


# -- deferred commit ------------------------------------------------------------


class Throttled(Exception):
    status_code = 429
    detail = "slow down"
    headers: ClassVar[dict[str, str]] = {"Retry-After": "7"}


@pytest.mark.parametrize(
    ("error", "status", "body", "extra_header"),
    [
        (RuntimeError("secret internals"), 500, b"Internal Server Error", None),
        (StreamRefused(404, "no such item"), 404, b"no such item", None),
        (Throttled(), 429, b"slow down", ("retry-after", "7")),
    ],
)
async def test_error_before_first_chunk_becomes_an_http_status(
    error: Exception, status: int, body: bytes, extra_header: tuple[str, str] | None
) -> None:
    async def produce() -> AsyncIterator[bytes]:
        await anyio.lowlevel.checkpoint()
        raise error
        yield b"never"

    app = StreamingResponse(produce(), media_type="text/plain")
    with anyio.fail_after(2):
        response = await StreamingClient(app).get("/")
    assert response.status_code == status
    assert response.body == body
    assert response.headers["content-length"] == str(len(body))
    assert response.complete
    if extra_header:
        assert response.headers[extra_header[0]] == extra_header[1]
    outcome = await app.wait_for_outcome()
    assert (outcome.reason, outcome.status_code, outcome.error) == (
        EndReason.PRODUCER_ERROR, status, error)


async def test_starlette_http_exception_status_is_used() -> None:
    from starlette.exceptions import HTTPException

    async def produce() -> AsyncIterator[bytes]:
        raise HTTPException(403, "forbidden here")
        yield b""

    with anyio.fail_after(2):
        response = await StreamingClient(StreamingResponse(produce())).get("/")
    assert (response.status_code, response.body) == (403, b"forbidden here")


async def test_error_after_first_chunk_cuts_the_stream() -> None:
    async def produce() -> AsyncIterator[bytes]:
        yield b"partial"
        raise ValueError("boom")

    app = StreamingResponse(produce())
    with anyio.fail_after(2), pytest.raises(ValueError, match="boom"):
        async with StreamingClient(app).stream("GET", "/") as response:
            await response.read()
    assert response.status_code == 200
    assert response.body == b"partial"
    assert response.body_messages()[-1]["more_body"] is True  # never the terminator
    assert app.outcome is not None and not app.outcome.body_complete


async def test_error_after_commit_calls_the_format_hook() -> None:
    async def produce() -> AsyncIterator[dict[str, int]]:
        yield {"n": 1}
        raise StreamRefused(503, "upstream went away")

    app = NDJSONResponse(produce())
    client = StreamingClient(app, raise_app_exceptions=False)
    with anyio.fail_after(2):
        async with client.stream("GET", "/") as response:
            await response.read()
    assert response.body == (b'{"n":1}\n'
                             b'{"error":{"type":"http_503","message":"upstream went away"}}\n')
    assert not response.complete
    assert isinstance(response.app_exception, StreamRefused)


async def test_headers_wait_for_the_first_chunk() -> None:
    release = anyio.Event()

    async def produce() -> AsyncIterator[bytes]:
        await release.wait()
        yield b"first"

    app = StreamingResponse(produce(), commit_deadline=None)
    with anyio.fail_after(2):
        async with StreamingClient(app).stream("GET", "/", wait_for_start=False) as response:
            await anyio.wait_all_tasks_blocked()
            assert [m for m in response.messages if m.direction == "send"] == []
            release.set()
            assert await response.read() == b"first"
    sent = [m.message["type"] for m in response.messages if m.direction == "send"]
    assert sent[:2] == ["http.response.start", "http.response.body"]


async def test_headers_go_out_at_the_commit_deadline_while_the_producer_is_idle() -> None:
    release = anyio.Event()

    async def produce() -> AsyncIterator[bytes]:
        await release.wait()
        yield b"late"
        raise ValueError("after commit")

    app = StreamingResponse(produce(), commit_deadline=0.01)
    client = StreamingClient(app, raise_app_exceptions=False)
    with anyio.fail_after(2):
        async with client.stream("GET", "/") as response:  # waits for the start message
            assert response.status_code == 200
            release.set()
            await response.read()
    assert response.body == b"late"  # the later error could not change the status
    assert not response.complete


async def test_commit_deadline_zero_commits_at_once() -> None:
    async def produce() -> AsyncIterator[bytes]:
        raise ValueError("too late to change the status")
        yield b""

    client = StreamingClient(StreamingResponse(produce(), commit_deadline=0),
                             raise_app_exceptions=False)
    with anyio.fail_after(2):
        response = await client.get("/")
    assert response.status_code == 200 and not response.complete


# -- HEAD, background, headers ------------------------------------------------------


async def test_head_sends_headers_only_and_never_starts_the_producer() -> None:
    started = False

    async def produce() -> AsyncIterator[bytes]:
        nonlocal started
        started = True
        yield b"body"

    app = StreamingResponse(produce(), headers={"X-Kind": "stream"}, media_type="text/plain")
    with anyio.fail_after(2):
        response = await StreamingClient(app).request("HEAD", "/")
    assert response.status_code == 200
    assert response.headers["x-kind"] == "stream"
    assert response.body == b"" and response.complete
    assert not started
    assert app.outcome is not None and app.outcome.reason is EndReason.HEAD
    assert app.outcome.cleanup_timed_out is False
    assert 0 <= app.outcome.duration < 2


async def test_head_closes_a_sync_generator_that_was_already_created() -> None:
    def produce() -> Generator[bytes, None, None]:
        yield b"never"

    generator = produce()
    with anyio.fail_after(2):
        await StreamingClient(StreamingResponse(generator)).request("HEAD", "/")
    assert getgeneratorstate(generator) == GEN_CLOSED


async def test_background_runs_after_a_completed_stream() -> None:
    order: list[str] = []

    async def produce() -> AsyncIterator[bytes]:
        yield b"x"
        order.append("stream done")

    async def background() -> None:
        order.append("background")

    with anyio.fail_after(2):
        await StreamingClient(StreamingResponse(produce(), background=background)).get("/")
    assert order == ["stream done", "background"]


async def test_background_does_not_run_when_the_client_leaves() -> None:
    ran = False

    async def produce() -> AsyncIterator[bytes]:
        yield b"x"
        await anyio.sleep_forever()

    async def background() -> None:
        nonlocal ran
        ran = True

    app = StreamingResponse(produce(), background=background)
    with anyio.fail_after(2):
        async with StreamingClient(app).stream("GET", "/", disconnect_after=1) as response:
            await response.read()
    assert not ran
    assert app.outcome is not None and app.outcome.reason is EndReason.CLIENT_DISCONNECTED


@pytest.mark.parametrize(
    ("media_type", "headers", "expected_type"),
    [
        ("text/plain", None, "text/plain; charset=utf-8"),
        ("text/csv; charset=latin-1", None, "text/csv; charset=latin-1"),
        ("application/x-ndjson", None, "application/x-ndjson"),
        (None, None, None),
        ("text/plain", {"Content-Type": "text/markdown"}, "text/markdown"),
    ],
)
async def test_media_types(media_type: str | None, headers: dict[str, str] | None,
                           expected_type: str | None) -> None:
    app = StreamingResponse(letters(), headers=headers, media_type=media_type)
    with anyio.fail_after(2):
        response = await StreamingClient(app).get("/")
    assert response.headers.get("content-type") == expected_type


async def test_custom_headers_and_status() -> None:
    app = StreamingResponse(letters(), 201, {"X-Custom-Header": "CustomValue",
                                             "Cache-Control": "no-cache"})
    app.headers["X-Later"] = "set after construction"
    with anyio.fail_after(2):
        response = await StreamingClient(app).get("/")
    assert response.status_code == 201
    assert response.headers["x-custom-header"] == "CustomValue"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-later"] == "set after construction"


# -- outcome and misuse -----------------------------------------------------------


async def test_on_outcome_callback_sync_and_async() -> None:
    seen: list[Outcome] = []

    async def record(outcome: Outcome) -> None:
        seen.append(outcome)

    for callback in (seen.append, record):
        with anyio.fail_after(2):
            await StreamingClient(StreamingResponse(letters(), on_outcome=callback)).get("/")
    assert [o.reason for o in seen] == [EndReason.COMPLETED, EndReason.COMPLETED]
    assert seen[0].chunks_sent == 3 and seen[0].body_complete


async def test_wait_for_outcome_from_another_task() -> None:
    app = StreamingResponse(letters())
    outcomes: list[Outcome] = []

    async def watch() -> None:
        outcomes.append(await app.wait_for_outcome())

    with anyio.fail_after(2):
        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            await StreamingClient(app).get("/")
    assert outcomes[0].reason is EndReason.COMPLETED


async def test_a_response_runs_once() -> None:
    app = StreamingResponse(letters())
    client = StreamingClient(app)
    with anyio.fail_after(2):
        await client.get("/")
        with pytest.raises(ResponseReusedError):
            await client.get("/")


async def test_websocket_scope_is_refused() -> None:
    async def never() -> dict[str, str]:
        raise AssertionError

    async def ignore(message: object) -> None:
        raise AssertionError

    with pytest.raises(UnsupportedScopeError):
        await StreamingResponse(letters())({"type": "websocket"}, never, ignore)


async def test_an_oserror_from_the_producer_is_a_producer_error_not_a_disconnect() -> None:
    async def produce() -> AsyncIterator[bytes]:
        yield b"first"
        raise FileNotFoundError("the export file vanished")

    app = StreamingResponse(produce())
    with anyio.fail_after(2), pytest.raises(FileNotFoundError):
        await StreamingClient(app, spec_version="2.4").get("/")
    assert app.outcome is not None and app.outcome.reason is EndReason.PRODUCER_ERROR


async def test_an_oserror_before_the_first_chunk_is_a_500() -> None:
    async def produce() -> AsyncIterator[bytes]:
        raise ConnectionRefusedError("upstream down")
        yield b""

    with anyio.fail_after(2):
        response = await StreamingClient(StreamingResponse(produce())).get("/")
    assert response.status_code == 500


# -- bad settings and headers are refused up front -------------------------------------


@pytest.mark.parametrize("status", [99, 600, "200", 200.0, True])
def test_status_code_must_be_an_http_status(status: object) -> None:
    with pytest.raises(StreamingConfigError):
        StreamingResponse(letters(), status)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "headers",
    [{"X-Split": "a\r\nSet-Cookie: x=1"}, {"X-Num": 5}, {"X-Ru": "наш"}, {"Bad Name": "x"}],
)
def test_headers_that_cannot_go_on_the_wire_are_refused(headers: dict[str, object]) -> None:
    with pytest.raises(HeaderValidationError):
        StreamingResponse(letters(), headers=headers)  # type: ignore[arg-type]


def test_setting_a_bad_header_later_is_refused_too() -> None:
    response = StreamingResponse(letters())
    with pytest.raises(HeaderValidationError):
        response.headers["X-Split"] = "a\nb"


@pytest.mark.parametrize("setting", [{"commit_deadline": -1}, {"cleanup_timeout": 0},
                                     {"send_timeout": float("nan")}])
def test_unworkable_timings_are_refused(setting: dict[str, Any]) -> None:
    with pytest.raises(StreamingConfigError):
        StreamingResponse(letters(), **setting)


async def test_an_error_header_that_cannot_be_sent_is_dropped_not_a_crash() -> None:
    async def produce() -> AsyncIterator[bytes]:
        raise StreamRefused(429, "slow down", headers={"X-Reason": "наш", "Retry-After": "5"})
        yield b""

    with anyio.fail_after(2):
        response = await StreamingClient(StreamingResponse(produce())).get("/")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "5"
    assert "x-reason" not in response.headers


async def test_an_error_detail_the_charset_cannot_encode_is_replaced() -> None:
    class Latin1Response(StreamingResponse):
        charset = "latin-1"

    async def produce() -> AsyncIterator[bytes]:
        raise StreamRefused(404, "нет")
        yield b""

    with anyio.fail_after(2):
        response = await StreamingClient(Latin1Response(produce())).get("/")
    assert (response.status_code, response.body) == (404, b"???")


async def test_a_drained_text_stream_ends_cleanly() -> None:
    drain = Drain()  # its final item is an SSE event, which text cannot carry

    async def produce() -> AsyncIterator[str]:
        yield "line\n"
        await anyio.sleep_forever()

    app = StreamingResponse(produce(), drain=drain)
    with anyio.fail_after(2):
        async with StreamingClient(app).stream("GET", "/") as response:
            async for _ in response.iter_chunks():
                await drain.drain()
    assert response.complete and response.body == b"line\n"
    assert app.outcome is not None and app.outcome.reason is EndReason.DRAINED


async def test_a_non_generator_source_is_closed_even_if_never_iterated() -> None:
    sender, receiver = anyio.create_memory_object_stream[bytes](1)
    drain = Drain()
    await drain.drain()  # streams that start now are stopped before their first item
    with anyio.fail_after(2):
        await StreamingClient(StreamingResponse(receiver, drain=drain)).get("/")
    with pytest.raises(anyio.BrokenResourceError):  # the receiving end was closed
        sender.send_nowait(b"x")
    sender.close()


async def test_a_sync_producer_waiting_for_a_worker_thread_is_not_a_slow_client() -> None:
    """All worker threads busy: the stream waits for one; that is the producer
    being slow, not the client, so no send timeout may fire."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    release = threading.Event()

    def produce() -> Iterator[bytes]:
        yield b"after the wait"

    app = StreamingResponse(produce(), send_timeout=0.02, commit_deadline=None)
    saved = limiter.total_tokens
    limiter.total_tokens = 1
    try:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                group.start_soon(anyio.to_thread.run_sync, release.wait, 5)
                await anyio.wait_all_tasks_blocked()
                async with StreamingClient(app).stream("GET", "/", wait_for_start=False) as resp:
                    await anyio.sleep(0.1)  # five send timeouts pass: the condition tested
                    release.set()
                    await resp.read()
    finally:
        limiter.total_tokens = saved
    assert resp.body == b"after the wait"
    assert app.outcome is not None and app.outcome.reason is EndReason.COMPLETED


async def test_an_error_before_the_first_chunk_is_a_logged_500_with_a_whole_body(
        caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> AsyncIterator[bytes]:
        raise RuntimeError("no data")
        yield b""

    app = StreamingResponse(fails())
    with anyio.fail_after(2), caplog.at_level(logging.ERROR, logger="streaming"):
        response = await StreamingClient(app).get("/")
    assert response.status_code == 500 and response.complete
    sent = [m.message for m in response.messages if m.direction == "send"]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[-1]["more_body"] is False
    [record] = caplog.records
    assert record.getMessage() == "producer failed before the first chunk; answering 500"
    assert app.outcome is not None and record.exc_info is not None
    assert record.exc_info[1] is app.outcome.error


async def test_batched_with_headers_first() -> None:
    async def two() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    app = StreamingResponse(two(), batch=True, commit_deadline=0)
    with anyio.fail_after(2):
        response = await StreamingClient(app).get("/")
    assert (response.body, response.complete) == (b"ab", True)
    assert app.outcome is not None and app.outcome.reason is EndReason.COMPLETED
    assert (app.outcome.chunks_sent, app.outcome.bytes_sent) == (2, 2)
