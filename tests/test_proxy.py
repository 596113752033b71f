"""Behind a real nginx (Debian's package, installed by scripts/test.sh when
missing) started on 127.0.0.1 with ``deploy/nginx.conf``, the configuration
the README recommends, in front of uvicorn serving ``tests/matrix_app.py``.

nginx keeps its default ``proxy_buffering on``. Our event streams send
``X-Accel-Buffering: no`` (and ``Cache-Control: no-cache``, no ``Connection``
header), and events come through one by one (nginx 1.22 forwards the chunks
of a chunked response promptly to a client that reads, header or not). What
buffering does to a stream nobody reads: nginx absorbs it (the producer runs on, nginx spools it
to disk); with ``X-Accel-Buffering: no`` the client's backpressure reaches
the app. A client
that leaves nginx reaches our producer's ``finally``; keep-alive comments keep
an idle event stream open past ``proxy_read_timeout``, and without them nginx
cuts it.

Plain sync tests: nginx and uvicorn are child processes, each read has
httpx's own timeout.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.matrix_app import BULK_CAP
from tests.servers import ServerProcess, nginx_process, server_process


@pytest.fixture(scope="module")
def app() -> Iterator[ServerProcess]:
    with server_process("uvicorn-httptools", "tests.matrix_app:app") as running:
        yield running


@pytest.fixture(scope="module")
def nginx(app: ServerProcess,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    assert shutil.which("nginx") or Path("/usr/sbin/nginx").exists(), \
        "Debian's nginx is not installed (scripts/test.sh installs it)"
    upstream = app.url.removeprefix("http://")
    with nginx_process(upstream, tmp_path_factory.mktemp("nginx")) as running:
        yield running


def finally_at(app: ServerProcess, key: str, wait: float = 5) -> float | None:
    """When stream ``key``'s producer ran its finally (asked of the app
    directly, not through nginx), or None if it has not within ``wait`` s."""
    answer = httpx.get(f"{app.url}/finally/{key}", params={"wait": wait}, timeout=10)
    return float(answer.text) if answer.status_code == 200 else None


def test_event_streams_opt_out_of_buffering_and_send_no_connection_header(
        app: ServerProcess, nginx: ServerProcess) -> None:
    with httpx.stream("GET", f"{app.url}/ticks", params={"count": 3}, timeout=10) as direct:
        assert direct.headers["x-accel-buffering"] == "no"
        assert direct.headers["cache-control"] == "no-cache"
        assert "connection" not in direct.headers
        direct.read()


def test_events_come_through_nginx_one_by_one(app: ServerProcess, nginx: ServerProcess) -> None:
    with httpx.stream("GET", f"{nginx.url}/sse/events-one-by-one", timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = response.iter_raw()
        # The producer sent one event and waits forever: nginx relayed it
        # before the body ended (with buffering it would sit in nginx's buffer).
        assert next(chunks) == b"data: first\n\n"


def produced_while_the_client_stops_reading(app: ServerProcess, nginx: ServerProcess,
                                            key: str, query: str = "") -> int:
    """Open /bulk through nginx on a socket with a small receive buffer, read
    the head, stop reading; return how many bytes the producer yielded once it
    no longer makes progress (it stops at BULK_CAP, or when nothing takes its
    chunks any more)."""
    with socket.socket() as client:
        # A small window: nginx's writes to this client block at once, as
        # they would for a reader that went away or a slow mobile link.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.settimeout(10)
        client.connect(("127.0.0.1", int(nginx.url.rsplit(":", 1)[1])))
        client.sendall(f"GET /bulk/{key}{query} HTTP/1.1\r\nHost: nginx\r\n\r\n".encode())
        assert client.recv(1024).startswith(b"HTTP/1.1 200")
        history: list[int] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            history.append(int(httpx.get(f"{app.url}/produced/{key}", timeout=10).text))
            # Stalled: no progress over the last 2 s (a busy machine can
            # pause nginx for a moment; a real stall lasts).
            if history[-1] >= BULK_CAP or history[-5:].count(history[-1]) == 5:
                return history[-1]
            time.sleep(0.5)
    raise AssertionError(f"the producer of {key} was still going after 30 s")


def test_buffering_absorbs_a_stream_the_client_does_not_read_and_the_header_turns_it_off(
        app: ServerProcess, nginx: ServerProcess) -> None:
    # proxy_buffering on: nginx keeps reading from the app into its buffers
    # and temporary file, so the producer runs on as if the client read.
    buffered = produced_while_the_client_stops_reading(app, nginx, "absorbed")
    # X-Accel-Buffering: no: the client's backpressure reaches the app, whose
    # producer waits (and whose send timeout can see the slow reader).
    unbuffered = produced_while_the_client_stops_reading(app, nginx, "held", "?unbuffered=1")
    print(f"\nclient not reading, behind nginx: buffered {buffered / 2**20:.1f} MiB produced, "
          f"with X-Accel-Buffering: no {unbuffered / 2**20:.1f} MiB")
    assert buffered >= BULK_CAP
    assert unbuffered < BULK_CAP / 2


def test_x_accel_buffering_no_makes_a_plain_stream_stream_through_nginx(
        app: ServerProcess, nginx: ServerProcess) -> None:
    with httpx.stream("GET", f"{nginx.url}/plain-ticks/unbuffered",
                      params={"unbuffered": 1}, timeout=10) as response:
        chunks = response.iter_raw()
        assert next(chunks).startswith(b"tick 0\n")
        assert finally_at(app, "unbuffered", wait=0) is None  # the producer still runs
        left_at = time.monotonic()
    ended = finally_at(app, "unbuffered")
    assert ended is not None
    print(f"\nbehind nginx: producer's finally {(ended - left_at) * 1000:.1f} ms after "
          f"the client left")


def test_a_client_leaving_nginx_runs_the_producers_finally(app: ServerProcess,
                                                           nginx: ServerProcess) -> None:
    with httpx.stream("GET", f"{nginx.url}/sse/leaves", timeout=10) as response:
        chunks = response.iter_raw()
        assert next(chunks) == b"data: first\n\n"
        left_at = time.monotonic()
    ended = finally_at(app, "leaves")
    assert ended is not None, "nginx did not pass the client's leaving on"
    delay = ended - left_at
    print(f"\nbehind nginx: idle producer's finally {delay * 1000:.1f} ms after the client left")
    assert delay < 1.0


@pytest.fixture(scope="module")
def impatient_nginx(app: ServerProcess,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with nginx_process(app.url.removeprefix("http://"), tmp_path_factory.mktemp("nginx-1s"),
                       read_timeout="1s") as running:
        yield running


def read_for(url: str, seconds: float) -> tuple[bytes, str]:
    """Read ``url`` for ``seconds`` (by the clock, the point of the test):
    the bytes, and "open" or how the stream ended."""
    received = b""
    deadline = time.monotonic() + seconds
    try:
        with httpx.stream("GET", url, timeout=seconds + 5) as response:
            for chunk in response.iter_raw():
                received += chunk
                if time.monotonic() >= deadline:
                    return received, "open"
        return received, "ended"
    except httpx.HTTPError as exc:
        return received, f"cut: {exc!r}"


def test_pings_keep_an_idle_event_stream_open_past_proxy_read_timeout(
        impatient_nginx: ServerProcess) -> None:
    received, end = read_for(f"{impatient_nginx.url}/sse/pinged?ping=0.3", seconds=2.5)
    assert end == "open", end
    assert received.startswith(b"data: first\n\n")
    assert received.count(b":") >= 3  # keep-alive comments crossed nginx


def test_without_pings_nginx_cuts_an_idle_event_stream_at_proxy_read_timeout(
        impatient_nginx: ServerProcess) -> None:
    received, end = read_for(f"{impatient_nginx.url}/sse/silent", seconds=4)
    assert received == b"data: first\n\n"
    assert end != "open", end  # nginx gave up on the silent upstream after 1 s
    print(f"\nsilent stream behind nginx (proxy_read_timeout 1s): {end}")


def test_the_config_file_is_the_one_the_readme_recommends() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "deploy/nginx.conf" in readme
