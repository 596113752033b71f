"""HTTP/2 end to end: hypercorn (asyncio and trio workers) speaking h2c with
prior knowledge to a client written on the ``h2`` package over a plain
socket, so the test controls every frame, RST_STREAM included.

- Events stream: the first DATA frame comes while the producer still waits.
- No connection-specific header (RFC 9113 8.2.2: ``Connection``,
  ``Keep-Alive``, ``Proxy-Connection``, ``Transfer-Encoding``, ``Upgrade``)
  reaches the client; h2 itself would reject a response carrying one.
  hypercorn drops such headers from what an app sends, so that we send none
  is asserted where a server passes them through: over HTTP/1.1 with uvicorn
  (tests/test_proxy.py, tests/test_compare_sse.py).
- RST_STREAM on an open stream is a disconnect: the producer's ``finally``
  runs while the connection stays open.
- httpx over HTTP/2 does not reset a stream when a response is closed: the
  app hears of it only when the connection closes (a client fact, for the
  README).
- The browser's limit: Chromium opens six EventSource connections per host
  over HTTP/1.1 and queues the rest; over HTTP/2 (TLS, ALPN) all of them open.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import httpx
import pytest

from tests.browser import chromium
from tests.servers import ServerProcess, server_process

APP = "tests.matrix_app:app"
CONNECTION_SPECIFIC = {b"connection", b"keep-alive", b"proxy-connection",
                       b"transfer-encoding", b"upgrade"}


@pytest.fixture(scope="module", params=["hypercorn-asyncio", "hypercorn-trio"])
def hypercorn(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with server_process(request.param, APP) as running:
        yield running


class H2Client:
    """One HTTP/2 connection with prior knowledge (h2c), frame by frame."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.authority = f"{host}:{port}"
        self._flush()

    def _flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def get(self, path: str) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, [(":method", "GET"), (":path", path),
                                           (":scheme", "http"), (":authority", self.authority)],
                               end_stream=True)
        self._flush()
        return stream_id

    def events(self) -> Iterator[h2.events.Event]:
        while True:
            data = self.sock.recv(65536)
            assert data, "the server closed the connection"
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(event.flow_controlled_length,
                                                        event.stream_id)
                yield event
            self._flush()

    def responses(self, *stream_ids: int) -> dict[int, tuple[list[tuple[bytes, bytes]], bytes]]:
        """The headers and the first DATA frame of each of ``stream_ids``."""
        headers: dict[int, list[tuple[bytes, bytes]]] = {}
        first_data: dict[int, bytes] = {}
        for event in self.events():
            if isinstance(event, h2.events.ResponseReceived):
                headers[event.stream_id] = list(event.headers)
            if isinstance(event, h2.events.DataReceived):
                first_data.setdefault(event.stream_id, bytes(event.data))
            if all(stream_id in first_data for stream_id in stream_ids):
                return {stream_id: (headers[stream_id], first_data[stream_id])
                        for stream_id in stream_ids}
        raise AssertionError("unreachable")

    def reset(self, stream_id: int) -> None:
        self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        self._flush()

    def close(self) -> None:
        self.sock.close()


def finally_at(running: ServerProcess, key: str, wait: float = 5) -> float | None:
    answer = httpx.get(f"{running.url}/finally/{key}", params={"wait": wait}, timeout=10)
    return float(answer.text) if answer.status_code == 200 else None


def test_events_stream_over_h2c_and_no_connection_specific_header_is_sent(
        hypercorn: ServerProcess) -> None:
    client = H2Client(hypercorn.url)
    try:
        first = client.get("/sse/h2-first")
        other = client.get("/text/h2-other")  # two streams on one connection
        got = client.responses(first, other)
        # Each producer sent one piece and waits forever: they stream.
        assert got[first][1] == b"data: first\n\n"
        assert got[other][1] == b"chunk 0\n"
        for headers, _ in got.values():
            assert dict(headers)[b":status"] == b"200"
            assert not CONNECTION_SPECIFIC & {name for name, _ in headers}
    finally:
        client.close()


def test_rst_stream_is_a_disconnect_while_the_connection_stays_open(
        hypercorn: ServerProcess) -> None:
    client = H2Client(hypercorn.url)
    try:
        stream_id = client.get("/sse/h2-reset")
        client.responses(stream_id)
        left_at = time.monotonic()
        client.reset(stream_id)
        ended = finally_at(hypercorn, "h2-reset")
        assert ended is not None, "RST_STREAM was not noticed"
        print(f"\nRST_STREAM -> finally {(ended - left_at) * 1000:.1f} ms")
        assert ended - left_at < 1.0
    finally:
        client.close()


def test_httpx_over_http2_does_not_reset_a_closed_response(hypercorn: ServerProcess) -> None:
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        with client.stream("GET", f"{hypercorn.url}/sse/httpx-h2") as response:
            assert response.http_version == "HTTP/2"
            next(response.iter_raw())
        # The response is closed, the connection is not: no RST_STREAM went out.
        assert finally_at(hypercorn, "httpx-h2", wait=1) is None
    assert finally_at(hypercorn, "httpx-h2") is not None  # the connection's close did it


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    assert shutil.which("openssl"), "openssl is installed by scripts/test.sh"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def opened_sources(url: str, count: int) -> tuple[int, int]:
    """Open ``count`` EventSources from one page; return how many got their
    first event, and how many once one of them was closed."""
    with chromium() as browser:
        context = browser.new_context(ignore_https_errors=True)
        page = context.new_page()
        page.goto(f"{url}/page/many?n={count}")
        page.wait_for_function(f"window.opened >= {min(6, count)}", timeout=10_000)
        page.wait_for_timeout(500)  # would a seventh open? (it must not over HTTP/1.1)
        before = int(page.evaluate("window.opened"))
        page.evaluate("window.sources[0].close()")
        page.wait_for_function(f"window.opened >= {min(before + 1, count)}",
                               timeout=10_000)
        after = int(page.evaluate("window.opened"))
        context.close()
    return before, after


def test_a_browser_opens_six_event_streams_per_host_over_http1_and_all_over_http2(
        tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    with server_process("hypercorn-asyncio", APP) as plain:
        over_http1 = opened_sources(plain.url, 8)
    with server_process("hypercorn-asyncio", APP, "--certfile", str(cert),
                        "--keyfile", str(key)) as tls:
        over_http2 = opened_sources(tls.url.replace("http://", "https://"), 8)
    print(f"\nChromium, 8 EventSources to one host: HTTP/1.1 {over_http1[0]} open "
          f"(then {over_http1[1]} once one closed), HTTP/2 {over_http2[0]}")
    assert over_http1 == (6, 7)  # the seventh waited for a free connection
    assert over_http2[0] == 8
