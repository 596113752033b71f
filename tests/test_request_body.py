"""The bounded request-body reader: limits over a bare ``receive``, the JSON
helper's table, the error as a status through the driver, and the same limits
end to end on uvicorn (httptools and h11) through a Starlette exception handler."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
import trio.testing
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from streaming import (
    BodyIncompleteError,
    BodyTimeoutError,
    BodyTooLargeError,
    InvalidJSONError,
    RequestBody,
    RequestBodyError,
    StreamingConfigError,
    StreamingResponse,
    parse_json,
    read_json,
)
from streaming._types import Message, Scope
from streaming.testing import StreamingClient
from tests.servers import UvicornThread


def scope(*headers: tuple[bytes, bytes], http_version: str = "1.1") -> Scope:
    return {"type": "http", "method": "POST", "path": "/", "http_version": http_version,
            "headers": list(headers)}


def messages(*chunks: bytes, then: Message | None = None) -> Any:
    """A receive() handing out the chunks, then ``then`` (or blocking forever)."""
    queue = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    calls = []

    async def receive() -> Message:
        calls.append(1)
        if queue:
            return queue.pop(0)
        if then is not None:
            return then
        await anyio.sleep_forever()
        raise AssertionError

    receive.calls = calls  # type: ignore[attr-defined]
    return receive


def endless(chunk: bytes) -> Any:
    calls = []

    async def receive() -> Message:
        calls.append(1)
        return {"type": "http.request", "body": chunk, "more_body": True}

    receive.calls = calls  # type: ignore[attr-defined]
    return receive


END: Message = {"type": "http.request", "body": b"", "more_body": False}


async def test_reads_the_chunks_and_counts_them() -> None:
    body = RequestBody(scope(), messages(b"ab", b"", b"cd", then=END))
    with anyio.fail_after(5):
        assert await body.read() == b"abcd"
    assert body.received == 4


async def test_a_body_at_the_limit_is_read() -> None:
    with anyio.fail_after(5):
        assert await RequestBody(scope(), messages(b"x" * 10, then=END), max_size=10).read()


async def test_a_content_length_over_the_limit_is_refused_before_reading() -> None:
    receive = messages(then=END)
    body = RequestBody(scope((b"content-length", b"11")), receive, max_size=10)
    with pytest.raises(BodyTooLargeError) as caught:
        await body.read()
    assert receive.calls == []
    assert caught.value.status_code == 413
    assert caught.value.headers == {"connection": "close"}


async def test_a_chunked_body_is_refused_by_the_message_that_crosses_the_limit() -> None:
    receive = endless(b"x" * 1000)  # no Content-Length, never ends
    with anyio.fail_after(5), pytest.raises(BodyTooLargeError, match="larger than 5000"):
        await RequestBody(scope(), receive, max_size=5000).read()
    assert len(receive.calls) == 6


async def test_http2_gets_no_connection_header() -> None:
    # RFC 9113 8.2.2: connection-specific headers are malformed in HTTP/2.
    with anyio.fail_after(5), pytest.raises(BodyTooLargeError) as caught:
        await RequestBody(scope(http_version="2"), endless(b"x"), max_size=3).read()
    assert caught.value.headers == {}


class TestTimers:
    """Run on trio under a mock clock that jumps ahead whenever every task
    waits, and on asyncio with short real timeouts."""

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
        if request.param == "trio":
            return "trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}
        return "asyncio", {}

    async def test_no_bytes_for_idle_timeout_is_a_408(self) -> None:
        body = RequestBody(scope(), messages(b"a"), idle_timeout=0.2, read_timeout=None)
        with anyio.fail_after(30), pytest.raises(BodyTimeoutError, match="no request body bytes"
                                                 ) as caught:
            await body.read()
        assert caught.value.status_code == 408
        assert caught.value.headers == {"connection": "close"}

    async def test_a_trickle_is_stopped_by_the_whole_body_timeout(self) -> None:
        async def trickle() -> Message:
            await anyio.sleep(0.01)
            return {"type": "http.request", "body": b"x", "more_body": True}

        body = RequestBody(scope(), trickle, idle_timeout=1, read_timeout=0.3)
        with anyio.fail_after(30), pytest.raises(BodyTimeoutError, match=r"longer than 0\.3 s"):
            await body.read()
        assert 0 < body.received < 1000


async def test_a_client_that_leaves_mid_body() -> None:
    receive = messages(b"a", then={"type": "http.disconnect"})
    with anyio.fail_after(5), pytest.raises(BodyIncompleteError):
        await RequestBody(scope(), receive).read()


async def test_the_body_is_read_once() -> None:
    body = RequestBody(scope(), messages(then=END))
    await body.read()
    with pytest.raises(RuntimeError, match="already been read"):
        await body.read()


async def test_a_starlette_request_and_its_json() -> None:
    request = Request(scope(), messages(b'{"a": [1, ', b'"\\ud83d\\ude00"]}', then=END))
    with anyio.fail_after(5):
        assert await read_json(request) == {"a": [1, "\U0001f600"]}


@pytest.mark.parametrize("limits", [{"max_size": -1}, {"max_size": 1.5}, {"max_size": True},
                                    {"idle_timeout": 0}, {"read_timeout": float("nan")},
                                    {"read_timeout": float("inf")}, {"idle_timeout": "1"}])
def test_limits_that_cannot_work_are_refused(limits: dict[str, Any]) -> None:
    with pytest.raises(StreamingConfigError):
        RequestBody(scope(), messages(), **limits)


# -- parse_json: pure table -------------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    (b"{", "not valid JSON: Expecting"),
    (b"", "not valid JSON"),
    (b'{"a": 1} x', "Extra data"),
    (b"\xff[]", "not UTF-8"),
    (b"\xef\xbb\xbf[]", "not valid JSON"),          # a BOM: RFC 8259 8.1 MUST NOT
    (b"NaN", "NaN is not JSON"),
    (b"[-Infinity]", "-Infinity is not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64"),
    (b"{\"a\":" * 65 + b"1" + b"}" * 65, "nested deeper than 64"),
    (b'"\\ud800"', "lone surrogate"),
    (b'{"\\udc00": 1}', "lone surrogate"),
    (b'["ok", ["\\ud83d"]]', "lone surrogate"),
    (b"1" * 5000, "too many digits"),
])
def test_parse_json_refuses(text: bytes, message: str) -> None:
    with pytest.raises(InvalidJSONError, match=message) as caught:
        parse_json(text)
    assert caught.value.status_code == 400
    assert isinstance(caught.value, ValueError)


def test_parse_json_accepts_the_limit_and_surrogate_pairs() -> None:
    assert parse_json(b"[" * 64 + b"]" * 64) is not None
    assert parse_json('{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}
    with pytest.raises(StreamingConfigError):
        parse_json(b"[]", max_depth=0)


# -- the error as a status ---------------------------------------------------------

@pytest.mark.parametrize("error", [BodyTooLargeError("too big", {"connection": "close"}),
                                   BodyTimeoutError("slow"), InvalidJSONError("bad")])
async def test_raised_before_the_first_chunk_it_becomes_its_status(
        error: RequestBodyError) -> None:
    async def produce() -> AsyncIterator[bytes]:
        raise error
        yield b""

    client = StreamingClient(lambda s, r, se: StreamingResponse(produce())(s, r, se))
    with anyio.fail_after(5):
        response = await client.get("/")
    assert response.status_code == error.status_code
    assert response.body == error.detail.encode()
    assert response.headers.get("connection") == error.headers.get("connection")


# -- end to end: uvicorn, a Starlette app with one exception handler -------------

async def refuse_body(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestBodyError)
    return PlainTextResponse(exc.detail, exc.status_code, exc.headers)


async def echo_size(request: Request) -> Response:
    body = await RequestBody.of(request, max_size=64 * 1024, idle_timeout=0.5,
                                read_timeout=5).read()
    return PlainTextResponse(str(len(body)))


APP = Starlette(routes=[Route("/", echo_size, methods=["POST"])],
                exception_handlers={RequestBodyError: refuse_body})


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(request: pytest.FixtureRequest) -> Iterator[str]:
    with UvicornThread(APP, http=request.param) as running:
        yield running.url


def _exchange(url: str, head: bytes, chunk: bytes | None = None, *, keep: bool = False
              ) -> tuple[bytes, bool]:
    """Send ``head``, then (from a thread) ``chunk`` as chunked-body chunks until
    the server answers or closes; return the response bytes and whether the
    server closed the connection within 5 s of answering (``keep``: not asked)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head)
        stop = threading.Event()

        def feed() -> None:
            frame = b"%x\r\n%s\r\n" % (len(chunk or b""), chunk)
            with contextlib.suppress(OSError):
                for _ in range(100_000):  # bounded; the server stops it far earlier
                    if stop.is_set():
                        return
                    connection.sendall(frame)

        sender = threading.Thread(target=feed, daemon=True)
        if chunk is not None:
            sender.start()
        received, closed = b"", False
        try:
            while not _complete(received):
                data = connection.recv(65536)
                if not data:
                    break
                received += data
            if not keep:
                connection.settimeout(5)
                closed = connection.recv(1) == b""
        except ConnectionResetError:  # closed with our unread body in its buffer
            closed = True
        stop.set()
        if chunk is not None:
            sender.join(10)
    return received, closed


def _complete(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


HEAD = b"POST / HTTP/1.1\r\nhost: x\r\n"


def test_e2e_an_endless_chunked_body_gets_413_and_a_closed_connection(server: str) -> None:
    response, closed = _exchange(
        server, HEAD + b"transfer-encoding: chunked\r\n\r\n", b"x" * 4096)
    assert response.startswith(b"HTTP/1.1 413 ")
    assert response.endswith(b"larger than 65536 bytes")
    assert closed


def test_e2e_a_content_length_over_the_limit_gets_413_unread(server: str) -> None:
    # Expect: 100-continue: a refusal before reading never invites the body.
    response, closed = _exchange(
        server, HEAD + b"expect: 100-continue\r\ncontent-length: 99999999\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in response
    assert closed


def test_e2e_a_stalled_body_gets_408(server: str) -> None:
    response, closed = _exchange(server, HEAD + b"content-length: 10\r\n\r\nabc")
    assert response.startswith(b"HTTP/1.1 408 ")
    assert closed


def test_e2e_a_body_within_the_limit(server: str) -> None:
    body = json.dumps({"a": "x" * 1000}).encode()
    response, _ = _exchange(
        server, HEAD + b"content-length: %d\r\n\r\n%s" % (len(body), body), keep=True)
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(str(len(body)).encode())
