"""An app whose every stream is watched: metrics at ``/metrics``, one JSON log
line per stream on stderr, the inspector at ``/inspector/`` (loopback only),
a fan-out hub observed by the same metrics at ``/hub``.
Each response names the worker process that served it (``x-pid``)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from streaming import EventSourceResponse, StreamingResponse, StreamLimiter
from streaming.hub import Hub
from streaming.inspector import Inspector, loopback_only
from streaming.logs import JSONFormatter, StreamLog
from streaming.metrics import StreamMetrics
from streaming.observe import StreamWatch

PID = {"x-pid": str(os.getpid())}


async def text(request: Request) -> StreamingResponse:
    n, size = int(request.query_params["n"]), int(request.query_params["size"])
    pace = float(request.query_params.get("pace", "0"))

    async def produce() -> AsyncIterator[bytes]:
        for _ in range(n):
            yield b"t" * size
            await anyio.sleep(pace)
    return StreamingResponse(produce(), headers=PID)


async def endless(request: Request) -> StreamingResponse:
    async def produce() -> AsyncIterator[bytes]:
        while True:
            yield b"tick\n"
            await anyio.sleep(float(request.query_params.get("pace", "3600")))
    return StreamingResponse(produce(), headers=PID)


async def ticks(request: Request) -> EventSourceResponse:
    async def produce() -> AsyncIterator[str]:
        for n in range(int(request.query_params.get("n", "1000000"))):
            yield f"tick {n}"
            await anyio.sleep(float(request.query_params.get("pace", "0.05")))
    return EventSourceResponse(produce(), headers=PID)


async def fail_after_headers(request: Request) -> StreamingResponse:
    async def produce() -> AsyncIterator[bytes]:
        yield b"partial\n"
        raise ValueError("the producer broke after the headers")
    return StreamingResponse(produce(), headers=PID)


async def fail_before_headers(request: Request) -> StreamingResponse:
    async def produce() -> AsyncIterator[bytes]:
        raise ValueError("the producer broke before the headers")
        yield b""  # pragma: no cover
    return StreamingResponse(produce(), headers=PID)


async def hub_events(request: Request) -> EventSourceResponse:
    return EventSourceResponse(hub.subscriber("news"), headers=PID)


async def pid(request: Request) -> PlainTextResponse:
    return PlainTextResponse(PID["x-pid"])


handler = logging.StreamHandler(sys.stderr)
handler.setFormatter(JSONFormatter())
stream_logger = logging.getLogger("test.streams")
stream_logger.addHandler(handler)
stream_logger.setLevel(os.environ.get("STREAM_LOG_LEVEL", "WARNING"))
stream_logger.propagate = False

metrics = StreamMetrics()
hub = Hub(observer=metrics, name="observed")   # in memory: one per worker
inspector = Inspector(loopback_only, interval=0.2)
app = StreamWatch(
    StreamLimiter(Starlette(routes=[
        Route("/pid", pid), Route("/text", text), Route("/endless", endless),
        Route("/ticks", ticks), Route("/hub", hub_events),
        Route("/fail-after-headers", fail_after_headers),
        Route("/fail-before-headers", fail_before_headers),
        Mount("/metrics", metrics.app), Mount("/inspector", inspector),
    ], lifespan=hub.lifespan), max_streams=100),
    metrics, StreamLog(stream_logger), inspector)
