"""Every ASGI server of the matrix, each a real process on 127.0.0.1 serving
``tests/matrix_app.py``: uvicorn (httptools and h11), hypercorn (asyncio and
trio workers, in its default mode: one worker under a parent), Granian and
Daphne, versions pinned in tests/constraints.txt.

On each: chunks arrive while the producer still waits (nothing buffers the
body), SSE parses, a client that leaves while the producer is idle is noticed
(the producer's ``finally`` runs, timed across the process boundary with the
machine's one monotonic clock), and SIGTERM to the server's own process (what
Docker and Kubernetes send to PID 1) gives every open stream the drain's
final event and a clean end.

Plain sync tests: the server is a child process and each client uses httpx's
own timeouts, so nothing can hang.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import httpx
import httpx_sse
import pytest

from tests.servers import SERVERS, ServerProcess, server_process
from tests.test_drain_sigterm import StreamReader

APP = "tests.matrix_app:app"
CLEANUP_BOUND = 1.0  # seconds from the client's close to the producer's finally


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, ServerProcess]]:
    with server_process(request.param, APP) as running:
        yield request.param, running


def finally_delay(running: ServerProcess, key: str, left_at: float) -> float:
    """Seconds from ``left_at`` (the client closing) to stream ``key``'s finally."""
    answer = httpx.get(f"{running.url}/finally/{key}", timeout=10)
    assert answer.status_code == 200, f"stream {key}'s finally did not run: {answer.text}"
    return float(answer.text) - left_at


def test_a_chunk_arrives_while_the_producer_waits_and_leaving_runs_its_finally(
        server: tuple[str, ServerProcess]) -> None:
    name, running = server
    with httpx.stream("GET", f"{running.url}/text/plain", timeout=10) as response:
        chunks = response.iter_raw()
        # The producer yields one chunk and then waits forever: the chunk can
        # only be here if the server sent it before the body ended.
        assert next(chunks) == b"chunk 0\n"
        left_at = time.monotonic()
    delay = finally_delay(running, "plain", left_at)
    print(f"\n{name}: finally {delay * 1000:.1f} ms after the client left")
    assert delay < CLEANUP_BOUND


def test_sse_parses_and_leaving_an_idle_event_stream_runs_its_finally(
        server: tuple[str, ServerProcess]) -> None:
    name, running = server
    with httpx.Client(timeout=10) as client, \
            httpx_sse.connect_sse(client, "GET", f"{running.url}/sse/events") as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events = source.iter_sse()  # held: a dropped generator would close the stream
        assert next(events).data == "first"
        left_at = time.monotonic()
    delay = finally_delay(running, "events", left_at)
    print(f"\n{name}: finally {delay * 1000:.1f} ms after the event stream's client left")
    assert delay < CLEANUP_BOUND


@pytest.mark.parametrize("name", SERVERS)
def test_sigterm_to_the_server_gives_every_open_stream_the_final_event(name: str) -> None:
    with server_process(name, APP, grace=8) as running:
        readers = [StreamReader(f"{running.url}/ticks") for _ in range(5)]
        for reader in readers:
            reader.wait_for_first_event(10)
        sent = time.monotonic()
        running.child.send_signal(signal.SIGTERM)
        for reader in readers:
            reader.wait_for_end(10)
        running.child.wait(10)
    for reader in readers:
        assert reader.events[-1][1].event == "shutdown", (name, reader.end)
        assert reader.end == "complete", (name, reader.end)
    latest = max(reader.ended_at for reader in readers) - sent
    print(f"\n{name}: SIGTERM -> every stream ended with 'shutdown' in {latest * 1000:.0f} ms, "
          f"exit code {running.child.returncode}")
    assert latest < 8 / 2  # the drain ended them, not the server's graceful timeout
