"""Measure what the tutorial claims, against a real uvicorn on 127.0.0.1.

``python -m examples.measure`` serves the demo (both layers) in a background
thread with the tutorial's full delays and prints:

* the time to ``/simple``'s response headers on each layer (ours waits for
  the first chunk, up to ``commit_deadline``; Starlette's and FastAPI's do not);
* wall time of ten concurrent requests to ``/sync``, ``/async`` and the
  anti-pattern ``/async-blocking`` (the tutorial: "50 s vs 5 s");
* for a client that leaves ``/disconnect`` after three lines: which producer
  branches ran and how long after the socket closed ``finally`` ran;
* ``/cleanup`` left early (its ``yield`` inside ``finally``);
* whether ``background=`` ran after a complete stream and after a client left.

``--scale 0.1`` runs everything ten times faster. Figures drift on shared
machines; compare layers within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import socket
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Sequence

import anyio
import anyio.to_thread
import httpx
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from examples.app import build_demo_app
from examples.scenario1 import LAYERS, Layer


class Marks:
    """A thread-safe log of (name, time) the producers report to; names repeat
    across runs, so waits look only at marks made after a given moment."""

    def __init__(self) -> None:
        self._log: list[tuple[str, float]] = []
        self._changed = threading.Condition()

    def mark(self, name: str) -> None:
        with self._changed:
            self._log.append((name, time.monotonic()))
            self._changed.notify_all()

    def since(self, start: float) -> dict[str, float]:
        with self._changed:
            seen: dict[str, float] = {}
            for name, at in self._log:
                if at >= start:
                    seen.setdefault(name, at)
            return seen

    def wait_for(self, name: str, start: float, timeout: float) -> float:
        with self._changed:
            if not self._changed.wait_for(lambda: name in self.since(start), timeout):
                raise TimeoutError(f"{name!r} was not marked within {timeout} s")
            return self.since(start)[name]


def marking_returns(app: ASGIApp, marks: Marks) -> ASGIApp:
    """Mark ``returned <path>`` when the app returns: the moment after which a
    background task that has not run never will."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        finally:
            marks.mark(f"returned {scope.get('path')}")

    return wrapped


@contextlib.contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """uvicorn (its defaults: httptools, ASGI spec 2.3) in a thread on a socket
    bound here, so the URL is known and early connections wait in the backlog."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, args=([listener],), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        listener.close()


# -- the measurements ------------------------------------------------------------


def say(text: str) -> None:
    """Report to the real stdout: ``measure`` silences the producers' own
    prints (the tutorial's log lines) so the figures stay readable."""
    print(text, file=sys.__stdout__, flush=True)


async def concurrent_wall_time(url: str, requests: int = 10) -> float:
    """Seconds until ``requests`` concurrent GETs of ``url`` have all finished."""
    limits = httpx.Limits(max_connections=requests)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        started = anyio.current_time()
        async with anyio.create_task_group() as group:
            for _ in range(requests):
                group.start_soon(client.get, url)
        return anyio.current_time() - started


async def leave_after(url: str, lines: int) -> float:
    """Read ``lines`` lines of ``url``, close the connection; return when it closed."""
    async with httpx.AsyncClient(timeout=30) as client, client.stream("GET", url) as response:
        seen = 0
        async for _ in response.aiter_lines():
            seen += 1
            if seen == lines:
                break
        left = time.monotonic()
    return left


async def branches_after_leaving(base: str, marks: Marks, layer: Layer, endpoint: str,
                                 settle_on: str) -> tuple[list[str], float]:
    """Leave ``endpoint`` after 3 lines; wait for the ``settle_on`` mark; return
    the branches that ran (in order) and the seconds from leaving to that mark."""
    start = time.monotonic()
    left = await leave_after(f"{base}/{layer}/{endpoint}", 3)
    await anyio.to_thread.run_sync(marks.wait_for, settle_on, start, 10.0)
    await anyio.to_thread.run_sync(marks.wait_for, f"returned /{layer}/{endpoint}", start, 10.0)
    seen = marks.since(start)
    prefix = f"{layer}:{endpoint}:"
    ran = sorted((at, name[len(prefix):]) for name, at in seen.items() if name.startswith(prefix))
    return [name for _, name in ran], seen[settle_on] - left


async def disconnect_figures(base: str, marks: Marks, runs: int) -> None:
    say(f"\n/disconnect, client leaves after 3 lines ({runs} runs per layer)")
    for layer in LAYERS:
        latencies, branch_sets = [], set()
        for _ in range(runs):
            ran, latency = await branches_after_leaving(
                base, marks, layer, "disconnect", f"{layer}:disconnect:finally")
            latencies.append(latency * 1000)
            branch_sets.add(" -> ".join(ran))
        say(f"  {layer:<9} branches: {' | '.join(sorted(branch_sets))}")
        say(f"  {layer:<9} leave -> finally: median {statistics.median(latencies):.2f} ms, "
              f"max {max(latencies):.2f} ms")


async def cleanup_figures(base: str, marks: Marks) -> None:
    say("\n/cleanup, client leaves after 3 lines (the yield inside finally)")
    for layer in LAYERS:
        ran, latency = await branches_after_leaving(
            base, marks, layer, "cleanup", f"{layer}:cleanup:release")
        say(f"  {layer:<9} {' -> '.join(ran)}  (release {latency * 1000:.2f} ms after leaving)")


async def background_figures(base: str, marks: Marks) -> None:
    say("\n/background (card 10): does background= run?")
    for layer in LAYERS:
        start = time.monotonic()
        async with httpx.AsyncClient(timeout=30) as client:
            await client.get(f"{base}/{layer}/background")
        await anyio.to_thread.run_sync(marks.wait_for, f"returned /{layer}/background", start, 10)
        complete = f"{layer}:background:ran" in marks.since(start)
        start = time.monotonic()
        await leave_after(f"{base}/{layer}/background", 2)
        await anyio.to_thread.run_sync(marks.wait_for, f"returned /{layer}/background", start, 10)
        left = f"{layer}:background:ran" in marks.since(start)
        say(f"  {layer:<9} after a complete stream: {'ran' if complete else 'did not run'}; "
              f"after the client left: {'ran' if left else 'did not run'}")


async def concurrency_figures(base: str, scale: float) -> None:
    per_request = 5 * 0.5 * scale
    say(f"\nten concurrent requests, each 5 lines x {0.5 * scale:g} s "
          f"(one request alone: {per_request:g} s)")
    for layer in LAYERS:
        for endpoint in ("sync", "async", "async-blocking"):
            wall = await concurrent_wall_time(f"{base}/{layer}/{endpoint}")
            say(f"  {layer:<9} /{endpoint:<15} {wall:6.2f} s  ({wall / per_request:4.1f}x one)")


async def headers_time(url: str) -> float:
    """Seconds from sending a GET of ``url`` to having its response headers."""
    async with httpx.AsyncClient(timeout=30) as client:
        started = time.monotonic()
        async with client.stream("GET", url):
            return time.monotonic() - started


async def headers_figures(base: str, runs: int = 5) -> None:
    # Starlette's StreamingResponse is also FastAPI's (fastapi.responses re-exports it).
    say("\n/simple, time to the response headers (the first line comes after 0.5 s x scale)")
    for layer in LAYERS:
        times = [await headers_time(f"{base}/{layer}/simple") for _ in range(runs)]
        say(f"  {layer:<9} median {statistics.median(times) * 1000:6.1f} ms of {runs}")


async def measure(scale: float, runs: int, skip_concurrency: bool) -> None:
    marks = Marks()
    app = marking_returns(build_demo_app(scale=scale, recorder=marks), marks)
    with serve(app) as base, contextlib.redirect_stdout(io.StringIO()):
        say(f"uvicorn {uvicorn.__version__} at {base}, delays x{scale:g}")
        await headers_figures(base)
        await disconnect_figures(base, marks, runs)
        await cleanup_figures(base, marks)
        await background_figures(base, marks)
        if not skip_concurrency:
            await concurrency_figures(base, scale)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.measure", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every delay")
    parser.add_argument("--runs", type=int, default=10, help="disconnects per layer")
    parser.add_argument("--skip-concurrency", action="store_true",
                        help="skip the ten-request runs (about a minute at full delays)")
    args = parser.parse_args(argv)
    anyio.run(measure, args.scale, args.runs, args.skip_concurrency)


if __name__ == "__main__":
    main()
