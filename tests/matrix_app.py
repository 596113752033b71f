"""The app every server of the matrix serves (tests/test_server_matrix.py,
tests/test_proxy.py, tests/test_http2.py): a Starlette app whose streams
report, across the process boundary, when their producer's ``finally`` ran.

Time is compared across processes with ``time.monotonic()``: on Linux it is
CLOCK_MONOTONIC, one clock for the whole machine, so the test can subtract the
moment it closed its socket from the moment the server's ``finally`` ran.

- ``GET /text/{key}``: one chunk, then the producer idles until cancelled.
- ``GET /sse/{key}``: one event, then idles (``ping`` seconds between
  keep-alive comments, from the query string; none by default).
- ``GET /ticks``: an event every 50 ms until the drain ends it with ``shutdown``.
- ``GET /plain-ticks``: ``tick N`` lines every 50 ms, as a plain text stream.
- ``GET /finally/{key}``: waits (at most 5 s) until stream ``key``'s
  ``finally`` ran and answers with that moment, or 404.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from streaming import Drain, EventSourceResponse, ServerSentEvent, StreamingResponse

drain = Drain(grace=3.0)
_finished: dict[str, float] = {}
_waiters: dict[str, anyio.Event] = {}


def _mark_finally(key: str) -> None:
    _finished[key] = time.monotonic()
    _waiters.setdefault(key, anyio.Event()).set()


async def _one_then_idle(key: str, first: object) -> AsyncIterator[object]:
    try:
        yield first
        await anyio.sleep_forever()
    finally:
        _mark_finally(key)


async def text(request: Request) -> Response:
    key = request.path_params["key"]
    return StreamingResponse(_one_then_idle(key, "chunk 0\n"), media_type="text/plain")


async def sse(request: Request) -> Response:
    key = request.path_params["key"]
    ping = float(request.query_params.get("ping", 0)) or None
    return EventSourceResponse(_one_then_idle(key, ServerSentEvent(data="first")), ping=ping)


async def _ticks(count: int) -> AsyncIterator[ServerSentEvent]:
    for n in range(count):
        yield ServerSentEvent(data=str(n), event="tick")
        await anyio.sleep(0.05)


async def ticks(request: Request) -> Response:
    count = int(request.query_params.get("count", 1_000_000))
    return EventSourceResponse(_ticks(count), drain=drain)


async def _plain_ticks(count: int) -> AsyncIterator[str]:
    for n in range(count):
        yield f"tick {n}\n"
        await anyio.sleep(0.05)


async def plain_ticks(request: Request) -> Response:
    count = int(request.query_params.get("count", 1_000_000))
    return StreamingResponse(_plain_ticks(count), media_type="text/plain")


async def finally_ran(request: Request) -> Response:
    key = request.path_params["key"]
    with anyio.move_on_after(5):
        await _waiters.setdefault(key, anyio.Event()).wait()
    if key not in _finished:
        return PlainTextResponse("not yet", status_code=404)
    return PlainTextResponse(repr(_finished[key]))


app = Starlette(
    routes=[
        Route("/text/{key}", text),
        Route("/sse/{key}", sse),
        Route("/ticks", ticks),
        Route("/plain-ticks", plain_ticks),
        Route("/finally/{key}", finally_ran),
    ],
    lifespan=drain.lifespan,
)
