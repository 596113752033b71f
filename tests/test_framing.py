"""Framing and connection headers are the server's: what a streamed response
refuses, what an error response drops, what HTTP/2 never sees; header values
RFC 9110 rejects; a start the server refuses ends the response once.

In process first, then on uvicorn with httptools and with h11 (raw sockets, so
every header line is seen as sent) and on hypercorn over HTTP/2 (h2c).
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from streaming import (
    EndReason,
    EventSourceResponse,
    FileResponse,
    HeaderValidationError,
    NDJSONResponse,
    StreamingResponse,
    StreamRefused,
)
from streaming._types import Message, Scope
from tests.apps.framing import app as framing_app
from tests.servers import UvicornThread, server_process
from tests.test_http2 import H2Client

RESPONSES = [
    pytest.param(lambda h: StreamingResponse(iter(["x"]), headers=h), id="stream"),
    pytest.param(lambda h: NDJSONResponse(iter([1]), headers=h), id="ndjson"),
    pytest.param(lambda h: EventSourceResponse(iter(["x"]), headers=h), id="sse"),
    pytest.param(lambda h: FileResponse(__file__, headers=h), id="file"),
]


# -- in process: the constructor and the header view --------------------------------

@pytest.mark.parametrize("build", RESPONSES)
@pytest.mark.parametrize("header", [
    ("Content-Length", "5"), ("content-length", "-1"), ("Transfer-Encoding", "chunked"),
    ("Transfer-Encoding", "gzip, chunked"), ("Trailer", "x-sum"), ("Upgrade", "h2c"),
    ("Connection", "upgrade"), ("Connection", "keep-alive, x-secret"),
    ("Proxy-Connection", "keep-alive"),
])
def test_a_framing_header_is_refused_in_the_constructor(build: Any,
                                                        header: tuple[str, str]) -> None:
    with pytest.raises(HeaderValidationError,
                       match=r"framed by the server|Connection may|not a response header"):
        build(dict([header]))


@pytest.mark.parametrize("header", [("Content-Length", "5"), ("Transfer-Encoding", "chunked"),
                                    ("Connection", "upgrade")])
def test_nor_can_it_be_set_afterwards(header: tuple[str, str]) -> None:
    response = StreamingResponse(iter(["x"]))
    with pytest.raises(HeaderValidationError):
        response.headers[header[0]] = header[1]


@pytest.mark.parametrize("build", RESPONSES)
@pytest.mark.parametrize("header", [("Connection", "keep-alive"), ("Connection", "close"),
                                    ("connection", "Keep-Alive, close"),
                                    ("Keep-Alive", "timeout=5, max=100")])
def test_connection_management_on_http1_is_allowed(build: Any, header: tuple[str, str]) -> None:
    build(dict([header]))


@pytest.mark.parametrize("value", [" v", "v ", "\tv", "v\t", " "])
def test_a_value_with_surrounding_whitespace_is_refused(value: str) -> None:
    # RFC 9110 5.5: field-value has no leading or trailing whitespace; h11
    # refuses such a start, which broke the response after the constructor.
    with pytest.raises(HeaderValidationError, match="whitespace"):
        StreamingResponse(iter(["x"]), headers={"x-a": value})
    with pytest.raises(HeaderValidationError, match="whitespace"):
        StreamingResponse(iter(["x"])).headers["x-a"] = value


@pytest.mark.parametrize("value", ["", "a b", "a\tb", "é"])
def test_inner_whitespace_and_empty_values_are_fine(value: str) -> None:
    assert StreamingResponse(iter(["x"]), headers={"x-a": value}).headers["x-a"] == value


# -- in process: the messages sent --------------------------------------------------

class Recorder:
    """receive() and send() for one request, recording what was sent; ``refuse``
    makes send() raise on the response start, as a server does for a header
    value it will not write."""

    def __init__(self, http_version: str = "1.1", refuse: bool = False) -> None:
        self.scope: Scope = {"type": "http", "method": "GET", "path": "/", "headers": [],
                             "http_version": http_version,
                             "asgi": {"version": "3.0", "spec_version": "2.3"}}
        self.sent: list[Message] = []
        self.refuse = refuse
        self.done = anyio.Event()

    async def receive(self) -> Message:
        await self.done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.start" and self.refuse:
            raise RuntimeError("Invalid HTTP header value.")  # uvicorn's httptools words
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.done.set()

    def start_headers(self) -> list[tuple[bytes, bytes]]:
        [start] = [m for m in self.sent if m["type"] == "http.response.start"]
        return list(start["headers"])

    async def run(self, response: Any) -> None:
        with anyio.fail_after(5):
            await response(self.scope, self.receive, self.send)


async def refusal(**headers: str) -> AsyncIterator[str]:
    raise StreamRefused(503, "busy", headers=headers)
    yield ""


async def test_an_error_response_drops_framing_headers_and_logs_them(
        caplog: pytest.LogCaptureFixture) -> None:
    peer = Recorder()
    await peer.run(StreamingResponse(refusal(**{
        "Transfer-Encoding": "chunked", "Content-Length": "-1", "Upgrade": "h2c",
        "Trailer": "x", "Connection": "upgrade", "Retry-After": "2"})))
    names = [name for name, _ in peer.start_headers()]
    assert sorted(names) == [b"content-length", b"content-type", b"retry-after"]
    body = b"".join(m.get("body", b"") for m in peer.sent if m["type"] == "http.response.body")
    assert dict(peer.start_headers())[b"content-length"] == str(len(body)).encode()
    dropped = [r.getMessage() for r in caplog.records if "dropping" in r.getMessage()]
    assert len(dropped) == 4  # transfer-encoding, upgrade, trailer, connection


async def test_on_http2_connection_headers_are_dropped_at_send_time() -> None:
    peer = Recorder(http_version="2")
    await peer.run(StreamingResponse(iter(["x"]), headers={"Connection": "keep-alive",
                                                           "Keep-Alive": "timeout=5"}))
    assert {b"connection", b"keep-alive"}.isdisjoint(n for n, _ in peer.start_headers())
    error = Recorder(http_version="2")
    await error.run(StreamingResponse(refusal(Connection="close")))
    assert b"connection" not in dict(error.start_headers())
    one = Recorder()
    await one.run(StreamingResponse(iter(["x"]), headers={"Connection": "keep-alive"}))
    assert dict(one.start_headers())[b"connection"] == b"keep-alive"


async def waits() -> AsyncIterator[str]:
    await anyio.sleep(0.2)
    yield "late"


async def fails() -> AsyncIterator[str]:
    raise StreamRefused(400, "no")
    yield ""


@pytest.mark.parametrize(("content", "deadline"), [
    pytest.param(lambda: iter(["first"]), 1.0, id="first-chunk"),
    pytest.param(waits, 0.01, id="commit-deadline"),   # the listener commits
    pytest.param(fails, 1.0, id="error-response"),
])
async def test_a_start_the_server_refuses_ends_the_response_once(
        content: Any, deadline: float, caplog: pytest.LogCaptureFixture) -> None:
    peer = Recorder(refuse=True)
    response = StreamingResponse(content(), commit_deadline=deadline)
    with pytest.raises(RuntimeError, match="Invalid HTTP header value") as caught:
        await peer.run(response)
    assert type(caught.value) is RuntimeError  # the server's own, not an ExceptionGroup
    assert [m["type"] for m in peer.sent] == ["http.response.start"]  # no second start
    assert response.outcome is not None
    assert response.outcome.reason is EndReason.START_REFUSED
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []  # the server logs it


# -- end to end: uvicorn (httptools, h11), raw sockets ------------------------------

@pytest.fixture(scope="module", params=["httptools", "h11"])
def uvicorn_server(request: pytest.FixtureRequest) -> Iterator[UvicornThread]:
    with UvicornThread(framing_app, http=request.param) as running:
        yield running


def exchange(url: str, *paths: str) -> list[bytes]:
    """GET each path on one connection (keep-alive); the raw response of each,
    or what came before the server closed the connection."""
    host, port = url.removeprefix("http://").split(":")
    answers = []
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        buffered = b""
        for path in paths:
            connection.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
            response, buffered = read_response(connection, buffered)
            answers.append(response)
    return answers


def read_response(connection: socket.socket, buffered: bytes) -> tuple[bytes, bytes]:
    data = buffered
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = re.search(rb"\r\ncontent-length: (\d+)", head, re.IGNORECASE)
            if length and len(rest) >= int(length[1]):
                end = len(head) + 4 + int(length[1])
                return data[:end], data[end:]
            if not length and rest.endswith(b"0\r\n\r\n"):
                return data, b""
        chunk = connection.recv(65536)
        if not chunk:
            return data, b""
        data += chunk


def header_names(response: bytes) -> list[bytes]:
    head = response.partition(b"\r\n\r\n")[0]
    return [line.partition(b":")[0].lower() for line in head.split(b"\r\n")[1:]]


def test_e2e_connection_keep_alive_passes_and_the_server_frames(
        uvicorn_server: UvicornThread) -> None:
    first, second = exchange(uvicorn_server.url, "/keep-alive", "/keep-alive")
    for response in (first, second):
        assert response.startswith(b"HTTP/1.1 200 ")
        names = header_names(response)
        assert names.count(b"transfer-encoding") == 1 and b"content-length" not in names
        assert b"connection: keep-alive" in response.lower()
        assert response.endswith(b"line 2\n\r\n0\r\n\r\n")


def test_e2e_an_error_response_has_one_framing_header(uvicorn_server: UvicornThread) -> None:
    [response] = exchange(uvicorn_server.url, "/refused")
    assert response.startswith(b"HTTP/1.1 503 ")
    names = header_names(response)
    assert names.count(b"content-length") == 1
    assert {b"transfer-encoding", b"upgrade", b"trailer"}.isdisjoint(names)
    assert b"retry-after" in names
    [closing] = exchange(uvicorn_server.url, "/close")
    assert closing.startswith(b"HTTP/1.1 400 ") and b"connection: close" in closing.lower()


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_e2e_a_refused_start_is_one_log_record_and_one_end(
        uvicorn_server: UvicornThread) -> None:
    collect = Collect()
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "streaming")]
    for logger in loggers:
        logger.addHandler(collect)
    try:
        kind = "space" if uvicorn_server.config.http == "h11" else "control"
        [response] = exchange(uvicorn_server.url, f"/bad-start?kind={kind}")
        [after] = exchange(uvicorn_server.url, "/keep-alive")  # the server carries on
    finally:
        for logger in loggers:
            logger.removeHandler(collect)
    assert b"HTTP/1.1" not in response  # nothing was sent: the connection closed
    assert after.startswith(b"HTTP/1.1 200 ")
    assert len(collect.records) == 1
    record = collect.records[0]
    text = record.getMessage() + repr(record.exc_info[1] if record.exc_info else "")
    assert "ExceptionGroup" not in text and "TaskGroup" not in text


# -- end to end: HTTP/2 ---------------------------------------------------------------

@pytest.fixture(scope="module")
def hypercorn() -> Iterator[str]:
    with server_process("hypercorn-asyncio", "tests.apps.framing:app") as running:
        yield running.url


def test_e2e_http2_never_sees_a_connection_header(hypercorn: str) -> None:
    # hypercorn's h2 also strips them on its own; the in-process test above
    # shows the response drops them for any server that speaks HTTP/2.
    client = H2Client(hypercorn)
    try:
        streams = [client.get("/keep-alive"), client.get("/close")]
        got = client.responses(*streams)
    finally:
        client.close()
    for headers, _ in got.values():
        names = {name for name, _ in headers}
        assert {b"connection", b"keep-alive", b"transfer-encoding"}.isdisjoint(names)
    assert dict(got[streams[0]][0])[b":status"] == b"200"
    assert dict(got[streams[1]][0])[b":status"] == b"400"


def test_the_table_in_the_docs_lists_every_refused_header() -> None:
    import streaming.responses.headers as module

    doc = module.__doc__ or ""
    for name in ("Content-Length", "Transfer-Encoding", "Trailer", "Upgrade", "Connection",
                 "Keep-Alive"):
        assert f"``{name}``" in doc
    assert Path(module.__file__).exists()
