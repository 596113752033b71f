"""The wire view: the pure decoder by table tests, the command against a real uvicorn."""

from __future__ import annotations

import io
import itertools
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.routing import Route

import streaming
from examples.app import build_demo_app
from streaming.cli import main
from streaming.tracing.wire import (
    BodyData,
    BodyEnd,
    Chunk,
    LastChunk,
    ResponseHead,
    WireDecoder,
    WireEvent,
    WireFormatError,
    format_event,
    request_bytes,
    watch,
)
from tests.servers import ROOT, UvicornThread

HEAD = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
OK_HEAD = ResponseHead("HTTP/1.1 200 OK", 200, (("transfer-encoding", "chunked"),))


def decode(data: bytes, method: str = "GET", *, closed: bool = False) -> list[WireEvent]:
    decoder = WireDecoder(method)
    events = decoder.feed(data)
    return events + decoder.close() if closed else events


# -- the decoder ------------------------------------------------------------------

TABLE: list[tuple[str, bytes, list[WireEvent]]] = [
    ("two chunks and the last one",
     HEAD + b"9\r\n\xe6\x95\xb0\xe6\x8d\xae 0\n\r\n4\r\nabcd\r\n0\r\n\r\n",
     [OK_HEAD, Chunk(b"9", "数据 0\n".encode()), Chunk(b"4", b"abcd"), LastChunk(b"0", ())]),
    ("size line kept as sent: upper case and an extension",
     HEAD + b"A;name=value\r\n0123456789\r\n0\r\n\r\n",
     [OK_HEAD, Chunk(b"A;name=value", b"0123456789"), LastChunk(b"0", ())]),
    ("a size with leading zeros",
     HEAD + b"0003\r\nabc\r\n000\r\n\r\n",
     [OK_HEAD, Chunk(b"0003", b"abc"), LastChunk(b"000", ())]),
    ("trailer fields after the last chunk",
     HEAD + b"1\r\nx\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n",
     [OK_HEAD, Chunk(b"1", b"x"), LastChunk(b"0", (("x-checksum", "abc"), ("x-other", "1")))]),
    ("chunked is the last transfer coding",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
     [ResponseHead("HTTP/1.1 200 OK", 200, (("transfer-encoding", "gzip, chunked"),)),
      LastChunk(b"0", ())]),
    ("a Content-Length body",
     b"HTTP/1.1 422 Unprocessable Entity\r\ncontent-length: 5\r\n\r\nhello",
     [ResponseHead("HTTP/1.1 422 Unprocessable Entity", 422, (("content-length", "5"),)),
      BodyData(b"hello"), BodyEnd(True, "Content-Length reached")]),
    ("Content-Length 0",
     b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
     [ResponseHead("HTTP/1.1 200 OK", 200, (("content-length", "0"),)),
      BodyEnd(True, "Content-Length reached")]),
    ("204 has no body",
     b"HTTP/1.1 204 No Content\r\n\r\n",
     [ResponseHead("HTTP/1.1 204 No Content", 204, ()),
      BodyEnd(True, "no body (a response to HEAD, or status 204 or 304)")]),
    ("an interim 100 Continue, then the response",
     b"HTTP/1.1 100 Continue\r\n\r\n" + HEAD + b"0\r\n\r\n",
     [ResponseHead("HTTP/1.1 100 Continue", 100, ()), OK_HEAD, LastChunk(b"0", ())]),
    ("an incomplete chunk waits for more bytes",
     HEAD + b"a\r\n01234",
     [OK_HEAD]),
]


@pytest.mark.parametrize(("data", "expected"), [case[1:] for case in TABLE],
                         ids=[case[0] for case in TABLE])
def test_decoder_table(data: bytes, expected: list[WireEvent]) -> None:
    assert decode(data) == expected


def test_a_response_to_head_has_no_body_whatever_its_headers_say() -> None:
    events = decode(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", "HEAD")
    assert events[-1] == BodyEnd(True, "no body (a response to HEAD, or status 204 or 304)")


CLOSED: list[tuple[str, bytes, BodyEnd]] = [
    ("cut between chunks", HEAD + b"1\r\nx\r\n",
     BodyEnd(False, "connection closed without terminating chunk (stream cut)")),
    ("cut inside a chunk", HEAD + b"5\r\nab",
     BodyEnd(False, "connection closed without terminating chunk (stream cut)")),
    ("cut in the head", b"HTTP/1.1 200 OK\r\n",
     BodyEnd(False, "connection closed before a complete response head")),
    ("cut short of Content-Length", b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab",
     BodyEnd(False, "connection closed 3 B short of Content-Length (stream cut)")),
    ("a close-delimited body ends at the close", b"HTTP/1.1 200 OK\r\n\r\nabc",
     BodyEnd(True, "connection closed (end of a close-delimited body)")),
]


@pytest.mark.parametrize(("data", "end"), [case[1:] for case in CLOSED],
                         ids=[case[0] for case in CLOSED])
def test_close_reports_whether_the_body_was_whole(data: bytes, end: BodyEnd) -> None:
    assert decode(data, closed=True)[-1] == end


def test_nothing_after_the_end() -> None:
    decoder = WireDecoder()
    decoder.feed(HEAD + b"0\r\n\r\n")
    assert decoder.done
    assert decoder.close() == []


BAD: list[tuple[str, bytes, str]] = [
    ("a size that is not hex", HEAD + b"zz\r\n", "invalid chunk size line"),
    ("an empty size line", HEAD + b"\r\n", "invalid chunk size line"),
    ("a negative size", HEAD + b"-1\r\n", "invalid chunk size line"),
    ("data not followed by CRLF", HEAD + b"2\r\nabcd", "not followed by CRLF"),
    ("not HTTP", b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x status line"),
    ("a header line without a colon", b"HTTP/1.1 200 OK\r\nnonsense\r\n\r\n", "malformed"),
    ("a bad Content-Length", b"HTTP/1.1 200 OK\r\ncontent-length: -3\r\n\r\n", "Content-Length"),
    ("an endless size line", HEAD + b"1" * 10_000, "line longer than"),
    ("a huge chunk", HEAD + b"ffffffffff\r\n", "larger than this viewer holds"),
]


@pytest.mark.parametrize(("data", "message"), [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])
def test_malformed_framing_is_an_error(data: bytes, message: str) -> None:
    with pytest.raises(WireFormatError, match=message):
        decode(data)


def test_wire_format_error_is_a_streaming_error() -> None:
    assert issubclass(WireFormatError, streaming.StreamingError)


WHOLE = HEAD + b"9\r\n\xe6\x95\xb0\xe6\x8d\xae 0\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"


@given(st.lists(st.integers(0, len(WHOLE)), max_size=8))
def test_any_split_of_the_bytes_gives_the_same_events(cuts: list[int]) -> None:
    decoder = WireDecoder()
    events: list[WireEvent] = []
    bounds = [0, *sorted(cuts), len(WHOLE)]
    for start, end in itertools.pairwise(bounds):
        events += decoder.feed(WHOLE[start:end])
    assert events == decode(WHOLE)
    assert decoder.done


def test_format_event_shows_size_line_bytes_and_time() -> None:
    line = format_event(502.25, Chunk(b"a", b"0123456789"))
    assert line == "    502.2  chunk  size line 'a'          10 B  '0123456789'"
    assert "last chunk  size line '0'  (body complete)" in format_event(1, LastChunk(b"0", ()))


def test_request_bytes() -> None:
    sent = request_bytes("http://127.0.0.1:8000/json/3?x=1")
    assert sent.startswith(b"GET /json/3?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n")
    assert b"Accept-Encoding: identity\r\n" in sent
    assert sent.endswith(b"\r\n\r\n")


# -- the command against a real uvicorn ------------------------------------------


async def two_then_fail() -> AsyncIterator[str]:
    yield "one\n"
    yield "two\n"
    raise RuntimeError("the producer broke after the headers were out")


async def broken(request: Request) -> streaming.StreamingResponse:
    return streaming.StreamingResponse(two_then_fail(), media_type="text/plain")


@pytest.fixture(scope="module")
def server() -> Iterator[UvicornThread]:
    app = build_demo_app(scale=0.02)
    app.router.routes.append(Route("/broken", broken))
    with UvicornThread(app) as running:
        yield running


@pytest.mark.parametrize("layer", ["raw", "starlette"])
async def test_watch_shows_every_chunk_and_the_last_one(server: UvicornThread,
                                                        layer: str) -> None:
    out = io.StringIO()
    result = await watch(f"{server.url}/{layer}/simple", out, give_up_after=10)
    assert (result.status, result.chunks, result.complete) == (200, 10, True)
    text = out.getvalue()
    assert len(re.findall(r"\d  chunk  size line '9' +9 B  '数据 \d\\n'", text)) == 10
    assert "transfer-encoding: chunked" in text
    assert text.rstrip().endswith("last chunk  size line '0'  (body complete)")


async def test_watch_reports_a_cut_stream(server: UvicornThread) -> None:
    out = io.StringIO()
    result = await watch(f"{server.url}/broken", out, give_up_after=10)
    assert (result.status, result.chunks, result.complete) == (200, 2, False)
    assert out.getvalue().rstrip().endswith(
        "connection closed without terminating chunk (stream cut)")


def data_chunk_lines(text: str) -> list[str]:
    return re.findall(r"\d  chunk  size line .*", text)


def test_the_wire_command(server: UvicornThread) -> None:
    # Plain sync test: the command runs its own event loop in a child process.
    done = subprocess.run([sys.executable, "-m", "streaming", "wire", f"{server.url}/json/2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert len(data_chunk_lines(done.stdout)) == 2
    assert "last chunk  size line '0'" in done.stdout
    cut = subprocess.run([sys.executable, "-m", "streaming", "wire", f"{server.url}/broken"],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert cut.returncode == 1
    assert "stream cut" in cut.stdout


def test_the_wire_command_says_when_there_is_nothing_to_read() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: refused
        assert main(["wire", f"http://127.0.0.1:{port}/"]) == 2
    assert main(["wire", "https://127.0.0.1:1/"]) == 2  # no TLS here
