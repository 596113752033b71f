"""Our streams behind compression middleware, through a real uvicorn: does
each piece still arrive while the producer waits for the next?

- Starlette's ``GZipMiddleware`` (1.10, pinned) leaves ``text/event-stream``
  alone and flushes the compressor after every body message: text, NDJSON
  and events all arrive piece by piece, nothing to set.
- ``starlette-compress`` (2.0, pinned) compresses event streams and flushes
  them per message, but holds other types in the compressor until enough has
  piled up: a text or NDJSON stream's first piece does not arrive while the
  producer waits, until the type is registered with
  ``add_compress_type(type, streaming=True)``. NDJSON is not on its list of
  compressible types: it passes uncompressed unless registered.

The client asks for gzip only and httpx decodes as it reads; each producer
yields one piece and then waits forever, so a piece that arrives was flushed.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.servers import ServerProcess, server_process

APP = "tests.compress_app:app"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with server_process("uvicorn-httptools", APP) as running:
        yield running


@pytest.fixture(scope="module")
def configured_server() -> Iterator[ServerProcess]:
    env = {"STREAMING_TYPES": "text/plain,application/x-ndjson"}
    with server_process("uvicorn-httptools", APP, env=env) as running:
        yield running


def first_piece(url: str, wait: float = 3) -> tuple[str | None, bytes | None]:
    """The response's Content-Encoding and its first decoded piece, or None
    if nothing arrived within ``wait`` seconds while the producer waits."""
    try:
        with httpx.stream("GET", url, headers={"Accept-Encoding": "gzip"},
                          timeout=httpx.Timeout(10, read=wait)) as response:
            encoding = response.headers.get("content-encoding")
            try:
                return encoding, next(response.iter_bytes())
            except httpx.ReadTimeout:
                return encoding, None
    except httpx.ReadTimeout:
        return None, None


EXPECTED = {"sse": b"data: first\n\n", "text": b"chunk 0\n", "ndjson": b'{"n":0}\n'}


@pytest.mark.parametrize("kind", ["sse", "text", "ndjson"])
def test_gzip_middleware_lets_every_stream_through_piece_by_piece(server: ServerProcess,
                                                                  kind: str) -> None:
    encoding, piece = first_piece(f"{server.url}/gzip/{kind}/gzip-{kind}")
    assert piece == EXPECTED[kind]
    assert encoding == (None if kind == "sse" else "gzip")  # event streams left alone


def test_starlette_compress_flushes_event_streams(server: ServerProcess) -> None:
    encoding, piece = first_piece(f"{server.url}/compress/sse/compress-sse")
    assert (encoding, piece) == ("gzip", EXPECTED["sse"])


def test_starlette_compress_holds_a_text_stream_until_its_type_is_registered(
        server: ServerProcess, configured_server: ServerProcess) -> None:
    held = first_piece(f"{server.url}/compress/text/held-text", wait=1.5)
    assert held == ("gzip", None)  # compressed, and stuck in the compressor
    flushed = first_piece(f"{configured_server.url}/compress/text/flushed-text")
    assert flushed == ("gzip", EXPECTED["text"])


def test_starlette_compress_leaves_ndjson_alone_unless_registered(
        server: ServerProcess, configured_server: ServerProcess) -> None:
    assert first_piece(f"{server.url}/compress/ndjson/plain-ndjson") == (None, EXPECTED["ndjson"])
    flushed = first_piece(f"{configured_server.url}/compress/ndjson/flushed-ndjson")
    assert flushed == ("gzip", EXPECTED["ndjson"])
