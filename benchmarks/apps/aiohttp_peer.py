"""aiohttp's ``StreamResponse`` and aiohttp-sse's ``EventSourceResponse``: the
non-ASGI choice people make for speed, on aiohttp's own server.

``python -m benchmarks.apps.aiohttp_peer --port N`` serves the scenario paths
and the harness endpoints (``/meta``, ``/cleanup``) on 127.0.0.1 with uvloop
and no access log, like the uvicorn servers of the other implementations: here
the whole stack is compared, server included.

Handlers are written the way aiohttp's documentation shows: ``prepare()``, one
``write()`` per chunk, ``write_eof()``. aiohttp has no NDJSON response (lines
are ``json.dumps(item) + "\\n"``, as for Starlette) and no sync-iterator support
(each ``next()`` goes to the loop's default executor, as its users write it).
aiohttp-sse encodes each ``str`` item itself (``data: ...``, ``\\r\\n``) and
pings every 15 s by default; it cannot turn pings off, so ``/idle-sse`` sets an
interval longer than any measurement. Default settings throughout: aiohttp
does not cancel a handler whose client left (``handler_cancellation=False``),
so an idle producer is closed only when a write fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import uvloop
from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from benchmarks.apps.common import (
    SCENARIO_PATHS,
    CleanupLog,
    Params,
    produce,
    produce_sync,
    produce_then_idle,
    traced,
)
from benchmarks.workload import IDLE_FIRST_CHUNK, NDJSON_ITEM, SSE_DATA, text_chunk

log = CleanupLog()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def params(request: web.Request) -> Params:
    return Params.parse(request.query_string.encode("latin-1"))


async def stream(request: web.Request, content_type: str,
                 chunks: AsyncIterator[bytes]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


async def in_executor(iterator: Iterator[bytes]) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    done = object()
    while (item := await loop.run_in_executor(None, next, iterator, done)) is not done:
        yield item  # type: ignore[misc]


async def encode_ndjson(items: AsyncIterator[object]) -> AsyncIterator[bytes]:
    async for item in items:
        yield (json.dumps(item) + "\n").encode()


async def text(request: web.Request) -> web.StreamResponse:
    p = params(request)
    return await stream(request, "text/plain", produce(p.n, text_chunk(p.size)))


async def text_sync(request: web.Request) -> web.StreamResponse:
    p = params(request)
    return await stream(request, "text/plain", in_executor(produce_sync(p.n, text_chunk(p.size))))


async def ndjson(request: web.Request) -> web.StreamResponse:
    p = params(request)
    return await stream(request, "application/x-ndjson", encode_ndjson(produce(p.n, NDJSON_ITEM)))


async def idle(request: web.Request) -> web.StreamResponse:
    p = params(request)
    return await stream(request, "text/plain", produce_then_idle(IDLE_FIRST_CHUNK, log, p.token))


async def send_events(request: web.Request, items: AsyncIterator[str], ping_interval: float
                      = EventSourceResponse.DEFAULT_PING_INTERVAL) -> EventSourceResponse:
    async with sse_response(request, ping_interval=ping_interval) as response:
        async for item in items:
            await response.send(item)
    return response


async def sse(request: web.Request) -> web.StreamResponse:
    return await send_events(request, produce(params(request).n, SSE_DATA))


async def idle_sse(request: web.Request) -> web.StreamResponse:
    # No way to turn pings off: one interval longer than any measurement.
    content = produce_then_idle(SSE_DATA, log, params(request).token)
    return await send_events(request, content, ping_interval=86_400)


async def ping_sse(request: web.Request) -> web.StreamResponse:
    p = params(request)
    content = produce_then_idle(SSE_DATA, log, p.token)
    return await send_events(request, content, ping_interval=p.ping)


ROUTES: dict[str, Handler] = {
    "/text": text,
    "/text-sync": text_sync,
    "/sse": sse,
    "/ndjson": ndjson,
    "/idle": idle,
    "/idle-sse": idle_sse,
    "/ping-sse": ping_sse,
}
META = {"name": "aiohttp", "sse_data_on_wire": SSE_DATA,
        "paths": {path: "ok" if path in ROUTES else "n/a" for path in SCENARIO_PATHS}}


async def meta(request: web.Request) -> web.Response:
    return web.json_response(META)


async def cleanup(request: web.Request) -> web.Response:
    timeout = float(request.query.get("timeout", "5"))
    at: float | None = None
    with contextlib.suppress(asyncio.TimeoutError):  # wait_for: 3.10 has no asyncio.timeout
        at = await asyncio.wait_for(log.wait_for_cleanup(request.query["token"]), timeout)
    return web.json_response({"finally_at": at})


async def tracemalloc_harness(request: web.Request) -> web.Response:
    body = traced.answer(request.query_string.encode("latin-1"))
    return web.Response(body=body, content_type="application/json")


def build() -> web.Application:
    app = web.Application()
    for path, handler in ROUTES.items():
        app.router.add_get(path, handler)
    app.router.add_get("/meta", meta)
    app.router.add_get("/cleanup", cleanup)
    app.router.add_get("/tracemalloc", tracemalloc_harness)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="aiohttp peer of the benchmark suite")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(build(), host="127.0.0.1", port=args.port, access_log=None, print=None,
                backlog=4096, shutdown_timeout=2, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
