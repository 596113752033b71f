"""streaming.testing: what users rely on when they test their own streams."""

from __future__ import annotations

import gc
import math
import warnings
from collections.abc import AsyncIterator
from itertools import count
from typing import Any, Literal

import anyio
import anyio.lowlevel
import pytest

from streaming import (
    HeaderValidationError,
    ServerSentEvent,
    StreamingConfigError,
    StreamingResponse,
)
from streaming._types import ASGIApp, Receive, Scope, Send
from streaming.exceptions import AppStillRunningError, ResponseClosedError
from streaming.testing import StreamingClient


async def endless() -> AsyncIterator[bytes]:
    for i in count():
        yield b"%d\n" % i
        await anyio.lowlevel.checkpoint()


async def test_reads_an_endless_stream_chunk_by_chunk() -> None:
    client = StreamingClient(StreamingResponse(endless()))
    with anyio.fail_after(2):
        async with client.stream("GET", "/") as response:
            chunks = []
            async for chunk in response.iter_chunks():
                chunks.append(chunk)
                if len(chunks) == 5:
                    break
    assert chunks == [b"0\n", b"1\n", b"2\n", b"3\n", b"4\n"]
    assert response.disconnected  # leaving the block with the body unfinished


async def test_disconnect_after_n_chunks() -> None:
    client = StreamingClient(StreamingResponse(endless()))
    with anyio.fail_after(2):
        async with client.stream("GET", "/", disconnect_after=3) as response:
            assert await response.read() == b"0\n1\n2\n"
    assert response.messages[-1].message["type"] in ("http.disconnect", "http.response.body")
    assert {"direction": "receive", "type": "http.disconnect"} in [
        {"direction": m.direction, "type": m.message["type"]} for m in response.messages]


@pytest.mark.parametrize(("spec", "raises"), [("2.3", False), ("2.4", True)])
async def test_send_after_disconnect_imitates_the_spec_version(
    spec: Literal["2.3", "2.4"], raises: bool
) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        assert (await receive())["type"] == "http.request"
        assert (await receive())["type"] == "http.disconnect"
        try:
            await send({"type": "http.response.body", "body": b"late", "more_body": True})
            seen.append("silent")
        except OSError:
            seen.append("OSError")

    client = StreamingClient(app, spec_version=spec)
    with anyio.fail_after(2):
        async with client.stream("GET", "/") as response:
            await response.disconnect()
            await response.wait_for_app()
    assert seen == (["OSError"] if raises else ["silent"])
    assert response.messages[1].message == {"type": "http.request", "body": b"", "more_body": False}


async def test_scope_carries_method_path_query_headers_and_spec_version() -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await StreamingResponse(iter([b"ok"]))(scope, receive, send)

    client = StreamingClient(app, spec_version="2.4")
    with anyio.fail_after(2):
        await client.request("POST", "/p/a?x=1", headers={"X-Test": "yes"}, body=b"{}")
    scope = scopes[0]
    assert (scope["method"], scope["path"], scope["query_string"]) == ("POST", "/p/a", b"x=1")
    assert (b"x-test", b"yes") in scope["headers"]
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}


async def test_app_exception_before_start_is_raised() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise LookupError("nothing here")

    with anyio.fail_after(2), pytest.raises(LookupError):
        await StreamingClient(broken).get("/")


async def test_app_exception_can_be_kept_instead_of_raised() -> None:
    async def produce() -> AsyncIterator[bytes]:
        yield b"a"
        raise ValueError("mid-stream")

    client = StreamingClient(StreamingResponse(produce()), raise_app_exceptions=False)
    with anyio.fail_after(2):
        response = await client.get("/")
    assert isinstance(response.app_exception, ValueError)
    assert not response.complete


async def test_a_test_failure_inside_the_block_is_not_wrapped() -> None:
    client = StreamingClient(StreamingResponse(endless()))
    with anyio.fail_after(2), pytest.raises(AssertionError, match="mine"):
        async with client.stream("GET", "/"):
            raise AssertionError("mine")


async def test_slow_client_backpressure_blocks_the_app() -> None:
    sent = 0

    async def produce() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 1
            yield b"x"

    client = StreamingClient(StreamingResponse(produce()), buffer=2)
    with anyio.fail_after(2):
        async with client.stream("GET", "/", disconnect_after=1) as response:
            await anyio.wait_all_tasks_blocked()
            assert sent < 10  # the app waits for the reader instead of racing ahead
            await response.read()


# -- what a test reads off a response ----------------------------------------------


def sends(*bodies: tuple[bytes, bool]) -> ASGIApp:
    """An app that sends these (body, more_body) messages, as framed here."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for body, more in bodies:
            await send({"type": "http.response.body", "body": body, "more_body": more})

    return app


async def test_events_parses_the_body_read_so_far() -> None:
    app = sends((b"data: one\n\n:ping\n", True), (b"event: x\nid: 7\nda", True),
                (b"ta: two\n\ndata: cut", True), (b"", False))
    with anyio.fail_after(2):
        async with StreamingClient(app).stream("GET", "/") as response:
            assert response.events() == []  # nothing read yet
            await response.next_chunk()
            assert response.events() == [ServerSentEvent(data="one")]
            await response.next_chunk()
            assert response.events() == [ServerSentEvent(data="one")]  # half an event
            await response.read()
    assert response.events() == [  # the unterminated "cut" is not an event (9.2.6)
        ServerSentEvent(data="one"), ServerSentEvent(data="two", event="x", id="7")]
    assert response.events(include_comments=True) == [
        ServerSentEvent(data="one"), ServerSentEvent(comment="ping"),
        ServerSentEvent(data="two", event="x", id="7")]


async def test_body_messages_show_how_the_body_was_framed() -> None:
    app = sends((b"a", True), (b"", True), (b"bc", True), (b"", False))
    with anyio.fail_after(2):
        response = await StreamingClient(app).get("/")
    assert [(m["body"], m["more_body"]) for m in response.body_messages()] == [
        (b"a", True), (b"", True), (b"bc", True), (b"", False)]
    assert response.chunks == [b"a", b"bc"]  # what a reader sees: empty ones skipped


async def test_body_messages_include_what_the_app_sent_after_the_client_left() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read", "more_body": True})
        assert (await receive())["type"] == "http.request"
        assert (await receive())["type"] == "http.disconnect"
        await send({"type": "http.response.body", "body": b"unread", "more_body": True})

    with anyio.fail_after(2):
        async with StreamingClient(app).stream("GET", "/", disconnect_after=1) as response:
            assert await response.read() == b"read"
            await response.wait_for_app()
    assert [m["body"] for m in response.body_messages()] == [b"read", b"unread"]
    assert response.body == b"read"


# -- misuse gets a clear error ----------------------------------------------------

async def test_reading_after_the_block_exits_is_an_error() -> None:
    client = StreamingClient(StreamingResponse(endless()))
    with anyio.fail_after(5):
        async with client.stream("GET", "/") as response:
            assert await response.next_chunk() == b"0\n"
        with pytest.raises(ResponseClosedError, match="inside the block"):
            await response.read()
        with pytest.raises(ResponseClosedError):
            await response.next_chunk()
        client = StreamingClient(StreamingResponse(endless()))
        async with client.stream("GET", "/", wait_for_start=False) as early:
            pass
        with pytest.raises(ResponseClosedError):
            await early.wait_for_start()
    assert response.body == b"0\n"


async def test_a_finished_response_can_still_be_read_after_the_block() -> None:
    async def three() -> AsyncIterator[bytes]:
        yield b"abc"

    client = StreamingClient(StreamingResponse(three()))
    with anyio.fail_after(5):
        response = await client.get("/")
        assert await response.read() == b"abc"
        assert await response.next_chunk() is None


async def test_a_header_that_is_not_latin1_is_refused_and_nothing_leaks() -> None:
    client = StreamingClient(StreamingResponse(endless()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(HeaderValidationError, match="not latin-1"):
            async with client.stream("GET", "/", headers={"x-name": "数据"}):
                pass
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_hostile_but_latin1_request_headers_are_sent_as_given() -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.extend(scope["headers"])
        await StreamingResponse(endless())(scope, receive, send)

    with anyio.fail_after(5):
        async with StreamingClient(app).stream(
                "GET", "/", headers={"Last-Event-ID": "a\x00\r\nb\xff"}):
            pass
    assert (b"last-event-id", b"a\x00\r\nb\xff") in seen


@pytest.mark.parametrize(("call", "message"), [
    ({"body": "text"}, "body must be bytes, not str"),
    ({"disconnect_after": -1}, "disconnect_after"),
    ({"disconnect_after": True}, "disconnect_after"),
    ({"disconnect_after": 1.5}, "disconnect_after"),
    ({"method": "GE T"}, "method"),
    ({"url": "/a b"}, "url"),
    ({"url": "/数"}, "url"),
])
async def test_stream_arguments_that_cannot_work(call: dict[str, Any], message: str) -> None:
    client = StreamingClient(StreamingResponse(endless()))
    arguments = {"method": "GET", "url": "/", **call}
    with pytest.raises(StreamingConfigError, match=message):
        async with client.stream(arguments.pop("method"), arguments.pop("url"), **arguments):
            pass


@pytest.mark.parametrize("options", [{"spec_version": "9.9"}, {"spec_version": 2.4},
                                     {"buffer": -1}, {"buffer": 0.5},
                                     {"app_exit_timeout": 0}, {"app_exit_timeout": math.nan}])
def test_client_options_that_cannot_work(options: dict[str, Any]) -> None:
    with pytest.raises(StreamingConfigError):
        StreamingClient(StreamingResponse(endless()), **options)


async def test_an_app_that_ignores_the_disconnect_is_cancelled_and_reported() -> None:
    finished: list[str] = []

    async def deaf(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await anyio.sleep_forever()  # never receive(): never sees http.disconnect
        finally:
            finished.append("cancelled")

    client = StreamingClient(deaf, app_exit_timeout=0.2)
    with anyio.fail_after(10), pytest.raises(AppStillRunningError, match=r"0\.2 s"):
        async with client.stream("GET", "/"):
            pass
    assert finished == ["cancelled"]
