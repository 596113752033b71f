"""The app every server of the matrix serves (tests/test_server_matrix.py,
tests/test_proxy.py, tests/test_http2.py): a Starlette app whose streams
report, across the process boundary, when their producer's ``finally`` ran.

Time is compared across processes with ``time.monotonic()``: on Linux it is
CLOCK_MONOTONIC, one clock for the whole machine, so the test can subtract the
moment it closed its socket from the moment the server's ``finally`` ran.

- ``GET /text/{key}``: one chunk, then the producer idles until cancelled.
- ``GET /sse/{key}``: one event, then idles (``ping`` seconds between
  keep-alive comments, from the query string; none by default).
- ``GET /ndjson/{key}``: one NDJSON line, then idles.
- ``GET /ticks``: an event every 50 ms until the drain ends it with ``shutdown``.
- ``GET /plain-ticks/{key}``: ``count`` lines ``tick N`` 50 ms apart, as a
  plain text stream (``unbuffered=1``: with ``X-Accel-Buffering: no``).
- ``GET /bulk/{key}``: 32 KiB chunks, as fast as they are taken, up to
  ``BULK_CAP`` bytes, then idles; ``GET /produced/{key}`` says how many bytes
  it has yielded so far (``unbuffered=1``: with ``X-Accel-Buffering: no``).
- ``GET /page/many``: a page that opens ``n`` EventSources to this host and
  counts those that got their first event in ``window.opened``.
- ``GET /finally/{key}``: waits (at most ``wait`` seconds, 5 by default)
  until stream ``key``'s ``finally`` ran and answers with that moment, or 404.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from streaming import (
    Drain,
    EventSourceResponse,
    NDJSONResponse,
    ServerSentEvent,
    StreamingResponse,
)

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


async def ndjson(request: Request) -> Response:
    key = request.path_params["key"]
    return NDJSONResponse(_one_then_idle(key, {"n": 0}))


async def _ticks(count: int) -> AsyncIterator[ServerSentEvent]:
    for n in range(count):
        yield ServerSentEvent(data=str(n), event="tick")
        await anyio.sleep(0.05)


async def ticks(request: Request) -> Response:
    count = int(request.query_params.get("count", 1_000_000))
    return EventSourceResponse(_ticks(count), drain=drain)


async def _plain_ticks(key: str, count: int) -> AsyncIterator[str]:
    try:
        for n in range(count):
            yield f"tick {n}\n"
            await anyio.sleep(0.05)
    finally:
        _mark_finally(key)


async def plain_ticks(request: Request) -> Response:
    count = int(request.query_params.get("count", 1_000_000))
    unbuffered = request.query_params.get("unbuffered") == "1"
    headers = {"X-Accel-Buffering": "no"} if unbuffered else None
    return StreamingResponse(_plain_ticks(request.path_params["key"], count),
                             media_type="text/plain", headers=headers)


BULK_CAP = 48 * 1024 * 1024
_produced: dict[str, int] = {}


async def _bulk(key: str) -> AsyncIterator[bytes]:
    chunk = b"x" * 32768
    _produced[key] = 0
    while _produced[key] < BULK_CAP:
        yield chunk
        _produced[key] += len(chunk)
    await anyio.sleep_forever()


async def bulk(request: Request) -> Response:
    unbuffered = request.query_params.get("unbuffered") == "1"
    headers = {"X-Accel-Buffering": "no"} if unbuffered else None
    return StreamingResponse(_bulk(request.path_params["key"]), media_type="text/plain",
                             headers=headers)


async def produced(request: Request) -> Response:
    return PlainTextResponse(str(_produced.get(request.path_params["key"], 0)))


_MANY_PAGE = """<!doctype html><meta charset="utf-8"><title>many</title>
<script>
window.opened = 0;
window.sources = [];
for (let i = 0; i < %d; i++) {
  const source = new EventSource("/sse/page-" + i + "-" + Date.now());
  source.onmessage = () => { window.opened += 1; };
  window.sources.push(source);
}
</script>"""


async def many_page(request: Request) -> Response:
    count = int(request.query_params.get("n", 8))
    return Response(_MANY_PAGE % count, media_type="text/html")


async def finally_ran(request: Request) -> Response:
    key = request.path_params["key"]
    with anyio.move_on_after(float(request.query_params.get("wait", 5))):
        await _waiters.setdefault(key, anyio.Event()).wait()
    if key not in _finished:
        return PlainTextResponse("not yet", status_code=404)
    return PlainTextResponse(repr(_finished[key]))


app = Starlette(
    routes=[
        Route("/text/{key}", text),
        Route("/sse/{key}", sse),
        Route("/ndjson/{key}", ndjson),
        Route("/ticks", ticks),
        Route("/plain-ticks/{key}", plain_ticks),
        Route("/bulk/{key}", bulk),
        Route("/produced/{key}", produced),
        Route("/page/many", many_page),
        Route("/finally/{key}", finally_ran),
    ],
    lifespan=drain.lifespan,
)
