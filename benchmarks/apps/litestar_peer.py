"""Litestar route handlers returning ``Stream`` and ``ServerSentEvent``, the way
its documentation shows them.

``Stream`` takes the shared producer as it is (a sync generator goes through
Litestar's ``AsyncIteratorWrapper``: one worker-thread round trip per item).
``ServerSentEvent`` encodes each ``str`` item itself (``data: ...`` and its
default ``\\r\\n`` separator). Litestar has no NDJSON response, so NDJSON lines are
formatted in a wrapping generator (``json.dumps(item) + "\\n"``), as for
Starlette; ``ServerSentEvent`` has no keep-alive, so ``/ping-sse`` is n/a.
Logging and OpenAPI are off, so no request pays for them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from litestar import Litestar, get
from litestar.response import ServerSentEvent, Stream

from benchmarks.apps.common import (
    CleanupLog,
    Params,
    Receive,
    Scope,
    Send,
    bench_app,
    produce,
    produce_sync,
    produce_then_idle,
)
from benchmarks.workload import IDLE_FIRST_CHUNK, NDJSON_ITEM, SSE_DATA, text_chunk

log = CleanupLog()


async def as_ndjson(items: AsyncIterator[object]) -> AsyncIterator[str]:
    async for item in items:
        yield json.dumps(item) + "\n"


@get("/text")
async def text(n: int, size: int = 16) -> Stream:
    return Stream(produce(n, text_chunk(size)), media_type="text/plain")


@get("/text-sync")
async def text_sync(n: int, size: int = 16) -> Stream:
    return Stream(produce_sync(n, text_chunk(size)), media_type="text/plain")


@get("/sse")
async def sse(n: int) -> ServerSentEvent:
    return ServerSentEvent(produce(n, SSE_DATA))


@get("/ndjson")
async def ndjson(n: int) -> Stream:
    return Stream(as_ndjson(produce(n, NDJSON_ITEM)), media_type="application/x-ndjson")


@get("/idle")
async def idle(token: str = "") -> Stream:
    return Stream(produce_then_idle(IDLE_FIRST_CHUNK, log, token), media_type="text/plain")


@get("/idle-sse")
async def idle_sse(token: str = "") -> ServerSentEvent:
    return ServerSentEvent(produce_then_idle(SSE_DATA, log, token))


api = Litestar(
    route_handlers=[text, text_sync, sse, ndjson, idle, idle_sse],
    openapi_config=None,
    logging_config=None,
)


async def to_litestar(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    await api(scope, receive, send)  # type: ignore[arg-type]


app = bench_app(
    "litestar",
    dict.fromkeys(("/text", "/text-sync", "/sse", "/ndjson", "/idle", "/idle-sse"), to_litestar),
    log,
    unavailable={"/ping-sse": "n/a: no keep-alive in ServerSentEvent"},
)
