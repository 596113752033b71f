"""Graceful drain on SIGTERM, against a real ``uvicorn examples.app:app`` process.

The demo's ``lifespan=drain.lifespan`` chains a handler in front of uvicorn's
(uvicorn installs its own before the lifespan starts): on SIGTERM it starts the
drain, then calls uvicorn's handler. Each open stream gets the ``shutdown``
event and its terminating chunk at once; uvicorn, waiting for connections to
close (up to ``--timeout-graceful-shutdown``), finds them done, runs the
lifespan shutdown, restores the default handler and raises SIGTERM again on
itself, so the process ends by that signal (return code -15).

Plain sync tests: the server is a child process and each stream is read by a
thread with httpx's own timeouts, so nothing can hang.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from streaming import ServerSentEvent, SSEParser
from tests.servers import uvicorn_process


class StreamReader:
    """Reads one event stream in a thread: every event with its arrival time
    (``time.monotonic()``), then how the stream ended."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[tuple[float, ServerSentEvent]] = []
        self.end = ""  # "complete", or "cut: <why>"
        self.ended_at = 0.0
        self.first_event = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        parser = SSEParser()
        try:
            with httpx.stream("GET", self.url, timeout=10) as response:
                for chunk in response.iter_raw():
                    self._keep(parser.feed(chunk))
            self.end = "complete"
        except httpx.HTTPError as exc:
            self.end = f"cut: {exc!r}"
        finally:
            self.ended_at = time.monotonic()
            self.first_event.set()  # also on failure: the waiting test sees why

    def _keep(self, events: list[ServerSentEvent]) -> None:
        now = time.monotonic()
        self.events += [(now, event) for event in events]
        if events:
            self.first_event.set()

    def wait_for_first_event(self, timeout: float) -> None:
        assert self.first_event.wait(timeout), f"no event from {self.url} in {timeout} s"
        assert self.events, f"{self.url} ended before its first event: {self.end}"

    def wait_for_end(self, timeout: float) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.url} still open after {timeout} s"

    def events_after(self, moment: float) -> list[str | None]:
        return [event.event for at, event in self.events if at >= moment]


@contextmanager
def demo_process(grace: float) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    # lifespan "auto" (the default) runs Starlette's lifespan, hence the drain.
    with uvicorn_process("examples.app:app", "--timeout-graceful-shutdown",
                         str(grace)) as running:
        yield running


def open_streams(url: str, paths: list[str]) -> list[StreamReader]:
    readers = [StreamReader(f"{url}{path}") for path in paths]
    for reader in readers:
        reader.wait_for_first_event(10)  # the first tick comes at once
    return readers


def terminate(child: subprocess.Popen[bytes], within: float) -> tuple[float, float]:
    """Send SIGTERM; return when it was sent and how long the process took to exit."""
    sent = time.monotonic()
    child.send_signal(signal.SIGTERM)
    child.wait(within)
    return sent, time.monotonic() - sent


def test_sigterm_drains_every_stream_then_uvicorn_exits() -> None:
    grace = 5
    with demo_process(grace) as (child, url):
        readers = open_streams(url, ["/sse/ours/clock"] * 3)
        sent, exit_time = terminate(child, within=grace)
        for reader in readers:
            reader.wait_for_end(5)
    for reader in readers:
        assert reader.events[-1][1].event == "shutdown", reader.events
        assert reader.end == "complete", reader.end  # the terminating chunk came
    assert child.returncode == -signal.SIGTERM  # uvicorn re-raises the signal it caught
    latest = max(reader.events[-1][0] for reader in readers) - sent
    print(f"\nSIGTERM -> last shutdown event {latest * 1000:.0f} ms, "
          f"process exit {exit_time * 1000:.0f} ms (grace {grace} s)")
    assert exit_time < grace  # the drain, not uvicorn's timeout, ended the streams


@pytest.mark.peer
def test_on_sigterm_the_peers_end_without_a_final_event() -> None:
    """The same shutdown with one stream per layer (peers pinned in
    tests/constraints.txt). Starlette's stream hears nothing and is cut when
    uvicorn's grace runs out. sse-starlette 3.7.1's watcher (polling every
    0.5 s) notices the flag its uvicorn patch set and ends the stream with the
    closing empty body but no event: the client sees a stream that simply
    finished, and cannot tell a shutdown from the end of the data."""
    grace = 2
    with demo_process(grace) as (child, url):
        ours, starlette, sse_starlette = open_streams(
            url, [f"/sse/{layer}/clock" for layer in ("ours", "starlette", "sse-starlette")])
        sent, exit_time = terminate(child, within=grace + 3)
        for reader in (ours, starlette, sse_starlette):
            reader.wait_for_end(5)
    assert ours.events_after(sent) == ["shutdown"] and ours.end == "complete"
    for reader in (starlette, sse_starlette):
        assert "shutdown" not in reader.events_after(sent)
    assert "incomplete chunked read" in starlette.end, starlette.end
    assert sse_starlette.end == "complete", sse_starlette.end  # no event, clean end
    assert starlette.ended_at - sent >= grace * 0.9  # cut by uvicorn's timeout
    assert sse_starlette.ended_at - sent < grace  # ended by its own watcher, earlier
    assert exit_time >= grace * 0.9  # the Starlette stream held the process up
    print(f"\nSIGTERM -> ours {(ours.ended_at - sent) * 1000:.0f} ms (shutdown event), "
          f"sse-starlette ended at {(sse_starlette.ended_at - sent) * 1000:.0f} ms "
          f"(no event), Starlette cut at {(starlette.ended_at - sent) * 1000:.0f} ms, "
          f"exit {exit_time * 1000:.0f} ms (grace {grace} s)")
