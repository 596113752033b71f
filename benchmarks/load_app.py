"""The app of the reliability suite (``python -m benchmarks.load``): the same
four streams through one of three layers, chosen by ``LOAD_LAYER`` in the
environment (each layer runs in a server process of its own):

- ``streaming``: this library (``StreamingResponse``, ``NDJSONResponse``,
  ``EventSourceResponse``; a ``Drain`` wired by ``lifespan``);
- ``starlette``: ``starlette.responses.StreamingResponse``, SSE and NDJSON
  formatted by a wrapping generator;
- ``sse-starlette``: ``sse_starlette.EventSourceResponse`` for the event
  stream, Starlette's response for the others (it has no other kind).

Paths (``n`` items ``every`` seconds apart; the producer counts itself live
from its first item to its ``finally``):

- ``/async``, ``/sync`` (a sync generator: worker threads), ``/sse``,
  ``/ndjson``: the four stream kinds.
- ``/firehose``: 64 KiB chunks as fast as they are taken (a checkpoint
  between them, as a producer reading a file or a socket would have), for a
  reader that stops reading (ours with ``send_timeout``).
- ``/ticks``: an event every 0.2 s until the client leaves or the drain ends
  it (for SIGTERM).
- ``/stats``: producers live, threads, open fds and ``VmRSS`` (after a full
  collection), as JSON.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.responses import StreamingResponse as StarletteStreamingResponse
from starlette.routing import Route

LAYER = os.environ.get("LOAD_LAYER", "streaming")
SEND_TIMEOUT = float(os.environ.get("LOAD_SEND_TIMEOUT", "2"))


class Live:
    """Producers between their first item and their ``finally`` (a lock: sync
    producers count themselves from worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.started = 0
        self.finally_on_loop = 0  # sync producers whose finally ran on the event loop

    def enter(self) -> None:
        with self._lock:
            self.count += 1
            self.started += 1

    def leave(self, sync: bool = False) -> None:
        with self._lock:
            self.count -= 1
            if sync and threading.current_thread() is threading.main_thread():
                self.finally_on_loop += 1


live = Live()


async def items(n: int, every: float) -> AsyncIterator[int]:
    live.enter()
    try:
        for i in range(n):
            yield i
            await anyio.sleep(every)
    finally:
        live.leave()


def sync_items(n: int, every: float) -> Iterator[str]:
    live.enter()
    try:
        for i in range(n):
            yield f"chunk {i}\n"
            time.sleep(every)
    finally:
        live.leave(sync=True)


async def as_text(source: AsyncIterator[int]) -> AsyncIterator[str]:
    async for i in source:
        yield f"chunk {i}\n"


def params(request: Request) -> tuple[int, float]:
    return int(request.query_params.get("n", 10)), float(request.query_params.get("every", 0.1))


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def stats(request: Request) -> Response:
    gc.collect()
    return JSONResponse({"layer": LAYER, "live": live.count, "started": live.started,
                         "threads": threading.active_count(), "rss_kib": rss_kib(),
                         "finally_on_loop": live.finally_on_loop,
                         "fds": len(os.listdir("/proc/self/fd"))})


def build_ours() -> Starlette:
    from streaming import (
        Drain,
        EventSourceResponse,
        NDJSONResponse,
        ServerSentEvent,
        StreamingResponse,
    )

    drain = Drain(grace=5)

    async def sse_events(source: AsyncIterator[int]) -> AsyncIterator[ServerSentEvent]:
        async for i in source:
            yield ServerSentEvent(data=str(i), event="tick")

    async def dicts(source: AsyncIterator[int]) -> AsyncIterator[dict[str, int]]:
        async for i in source:
            yield {"n": i}

    async def firehose_chunks() -> AsyncIterator[bytes]:
        chunk = b"x" * 65536
        live.enter()
        try:
            while True:
                yield chunk
                await anyio.lowlevel.checkpoint()  # as a producer that reads something would
        finally:
            live.leave()

    routes = {
        "/async": lambda r: StreamingResponse(as_text(items(*params(r))), media_type="text/plain"),
        "/sync": lambda r: StreamingResponse(sync_items(*params(r)), media_type="text/plain"),
        "/sse": lambda r: EventSourceResponse(sse_events(items(*params(r))), drain=drain),
        "/ndjson": lambda r: NDJSONResponse(dicts(items(*params(r)))),
        "/ticks": lambda r: EventSourceResponse(sse_events(items(10**6, 0.2)), drain=drain),
        "/firehose": lambda r: StreamingResponse(firehose_chunks(), media_type="text/plain",
                                                 send_timeout=SEND_TIMEOUT),
    }
    return _app(routes, lifespan=drain.lifespan)


def build_peer() -> Starlette:
    async def sse_lines(source: AsyncIterator[int]) -> AsyncIterator[str]:
        async for i in source:
            yield f"event: tick\ndata: {i}\n\n"

    async def json_lines(source: AsyncIterator[int]) -> AsyncIterator[str]:
        async for i in source:
            yield json.dumps({"n": i}) + "\n"

    async def firehose_chunks() -> AsyncIterator[bytes]:
        chunk = b"x" * 65536
        live.enter()
        try:
            while True:
                yield chunk
                await anyio.lowlevel.checkpoint()  # as a producer that reads something would
        finally:
            live.leave()

    def sse(request: Request, n: int, every: float) -> Response:
        if LAYER == "sse-starlette":
            from sse_starlette import EventSourceResponse

            async def events(source: AsyncIterator[int]) -> AsyncIterator[dict[str, Any]]:
                async for i in source:
                    yield {"event": "tick", "data": str(i)}

            return EventSourceResponse(events(items(n, every)), ping=15)
        return StarletteStreamingResponse(sse_lines(items(n, every)),
                                          media_type="text/event-stream")

    routes = {
        "/async": lambda r: StarletteStreamingResponse(as_text(items(*params(r))),
                                                       media_type="text/plain"),
        "/sync": lambda r: StarletteStreamingResponse(sync_items(*params(r)),
                                                      media_type="text/plain"),
        "/sse": lambda r: sse(r, *params(r)),
        "/ndjson": lambda r: StarletteStreamingResponse(json_lines(items(*params(r))),
                                                        media_type="application/x-ndjson"),
        "/ticks": lambda r: sse(r, 10**6, 0.2),
        "/firehose": lambda r: StarletteStreamingResponse(firehose_chunks(),
                                                          media_type="text/plain"),
    }
    return _app(routes)


def _app(routes: dict[str, Any], lifespan: Any = None) -> Starlette:
    def endpoint(build: Any) -> Any:
        async def handle(request: Request) -> Response:
            return build(request)  # type: ignore[no-any-return]
        return handle

    return Starlette(routes=[Route("/stats", stats),
                             *(Route(path, endpoint(build)) for path, build in routes.items())],
                     lifespan=lifespan)


app = build_ours() if LAYER == "streaming" else build_peer()
