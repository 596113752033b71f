"""Request and response streaming at once: the producer reads the request body
(forwarded by the driver's listener) while its response streams.

In-process with hand-written receive/send, then on real servers (uvicorn,
anycorn, Granian) with an h11 client that sends one NDJSON line at a time and
reads each answer before it sends the next.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import h11
import pytest

from examples.files import create_app
from streaming import EndReason, NDJSONResponse, RequestBody, StreamingResponse
from streaming._types import Message
from streaming.driver import RequestStream
from streaming.exceptions import StreamingConfigError
from tests.servers import UvicornThread
from tests.test_files_zerocopy import server

SCOPE = {"type": "http", "method": "POST", "path": "/", "headers": [],
         "asgi": {"version": "3.0", "spec_version": "2.3"}}


async def echo_upper(body: RequestBody) -> AsyncIterator[bytes]:
    async for chunk in body:
        yield chunk.upper()


async def test_each_body_piece_is_answered_before_the_next_arrives() -> None:
    to_app, from_client = anyio.create_memory_object_stream[Message](0)
    sent: list[Message] = []
    answered = anyio.Event()

    async def send(message: Message) -> None:
        sent.append(message)
        if message.get("body"):
            answered.set()

    incoming = RequestStream()
    body = RequestBody(SCOPE, incoming.receive, max_size=None, idle_timeout=None,
                       read_timeout=None)
    response = StreamingResponse(echo_upper(body), request_stream=incoming)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(response, SCOPE, from_client.receive, send)
            for piece in (b"one", b"two", b"three"):
                answered = anyio.Event()
                await to_app.send({"type": "http.request", "body": piece, "more_body": True})
                await answered.wait()  # answered while the request is still open
                assert sent[-1]["body"] == piece.upper()
            await to_app.send({"type": "http.request", "body": b"", "more_body": False})
            outcome = await response.wait_for_outcome()
            group.cancel_scope.cancel()  # the fake server's receive, waiting for nothing
    assert outcome.reason is EndReason.COMPLETED
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_disconnect_mid_body_is_noticed_and_the_producer_closed() -> None:
    to_app, from_client = anyio.create_memory_object_stream[Message](0)
    closed = anyio.Event()

    async def produce(body: RequestBody) -> AsyncIterator[bytes]:
        try:
            async for chunk in body:
                yield chunk
        finally:
            closed.set()

    async def send(message: Message) -> None:
        pass

    incoming = RequestStream()
    body = RequestBody(SCOPE, incoming.receive, max_size=None, idle_timeout=None,
                       read_timeout=None)
    response = StreamingResponse(produce(body), request_stream=incoming)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(response, SCOPE, from_client.receive, send)
            await to_app.send({"type": "http.request", "body": b"x", "more_body": True})
            await to_app.send({"type": "http.disconnect"})
            outcome = await response.wait_for_outcome()
        # Anyone still reading the stream hears that the client left.
        assert (await incoming.receive())["type"] == "http.disconnect"
    assert outcome.reason is EndReason.CLIENT_DISCONNECTED
    assert closed.is_set()


async def test_a_full_buffer_holds_the_listener_but_not_the_timers() -> None:
    # The producer takes nothing: the listener waits with four messages
    # queued (memory stays bounded), and the commit deadline still sends the
    # headers. (While it waits it does not see a disconnect: the known limit
    # the README states; a producer that reads the body ends the wait.)
    to_app, from_client = anyio.create_memory_object_stream[Message](10)
    sent: list[Message] = []
    started = anyio.Event()

    async def send(message: Message) -> None:
        sent.append(message)
        started.set()

    async def never_reads() -> AsyncIterator[bytes]:
        await anyio.sleep_forever()
        yield b""  # pragma: no cover

    incoming = RequestStream(buffered=4)
    response = StreamingResponse(never_reads(), request_stream=incoming, commit_deadline=0.05)
    for _ in range(8):
        to_app.send_nowait({"type": "http.request", "body": b"x", "more_body": True})
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(response, SCOPE, from_client.receive, send)
            await started.wait()
            assert sent[0]["type"] == "http.response.start"
            assert to_app.statistics().current_buffer_used == 3  # 4 queued, 1 held
            group.cancel_scope.cancel()
    incoming.close()
    assert len([m async for m in _drain(incoming)]) == 4


async def _drain(stream: RequestStream) -> AsyncIterator[Message]:
    while (message := await stream.receive())["type"] == "http.request":
        yield message


def test_buffered_must_be_positive() -> None:
    with pytest.raises(StreamingConfigError, match=r"^buffered must be an int >= 1, not 0$"):
        RequestStream(buffered=0)
    RequestStream(buffered=1)  # one message at a time is enough


@pytest.mark.parametrize("kind", ["uvicorn", "anycorn-trio", "granian"])
def test_ndjson_transform_with_a_client_that_reads_as_it_sends(kind: str,
                                                                tmp_path: Path) -> None:
    with _serving(kind, tmp_path) as url:
        host, port = url.removeprefix("http://").split(":")
        conn = h11.Connection(h11.CLIENT)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(conn.send(h11.Request(method="POST", target="/transform", headers=[
                ("host", host), ("content-type", "application/x-ndjson"),
                ("transfer-encoding", "chunked")])))
            answers = []
            for i, line in enumerate([b'{"n": 1}\n', b"not json\n", b'{"n": [3]}\n']):
                sock.sendall(conn.send(h11.Data(data=line)))
                answers.append(_next_line(conn, sock))  # before the next line is sent
                assert i == len(answers) - 1
            sock.sendall(conn.send(h11.EndOfMessage()))
            rest = _read_to_end(conn, sock)
    assert json.loads(answers[0]) == {"received": {"n": 1}, "length": 8}
    assert "error" in json.loads(answers[1])
    assert json.loads(answers[2]) == {"received": {"n": [3]}, "length": 10}
    assert rest == b""


@contextmanager
def _serving(kind: str, root: Path) -> Iterator[str]:
    if kind == "uvicorn":  # in this process, the way most tests run it
        with UvicornThread(create_app(root)) as running:
            yield running.url
    else:
        with server(kind, root, "examples.files:create_app") as url:
            yield url


def _next_event(conn: h11.Connection, sock: socket.socket) -> object:
    while (event := conn.next_event()) is h11.NEED_DATA:
        conn.receive_data(sock.recv(65536))  # the socket's timeout bounds the wait
    return event


def _next_line(conn: h11.Connection, sock: socket.socket) -> bytes:
    while True:
        event = _next_event(conn, sock)
        if isinstance(event, h11.Response):
            assert event.status_code == 200
        elif isinstance(event, h11.Data):
            return bytes(event.data)


def _read_to_end(conn: h11.Connection, sock: socket.socket) -> bytes:
    data = b""
    while not isinstance(event := _next_event(conn, sock), h11.EndOfMessage):
        if isinstance(event, h11.Data):
            data += bytes(event.data)
    return data


def test_ndjson_response_takes_the_stream_too() -> None:
    incoming = RequestStream()
    assert NDJSONResponse([], request_stream=incoming).request_stream is incoming
