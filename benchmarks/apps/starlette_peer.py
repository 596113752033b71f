"""``starlette.responses.StreamingResponse``, used the way the tutorial teaches.

Starlette has no SSE or NDJSON response, so those scenarios format each item in
a wrapping async generator (``f"data: {item}\\n\\n"``, ``json.dumps(item) + "\\n"``),
which is what its users write. It has no keep-alive pings: ``/ping-sse`` is n/a.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse

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


async def as_sse(items: AsyncIterator[str]) -> AsyncIterator[str]:
    async for item in items:
        yield f"data: {item}\n\n"


async def as_ndjson(items: AsyncIterator[object]) -> AsyncIterator[str]:
    async for item in items:
        yield json.dumps(item) + "\n"


async def text(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    response = StreamingResponse(produce(p.n, text_chunk(p.size)), media_type="text/plain")
    await response(scope, receive, send)


async def text_sync(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    response = StreamingResponse(produce_sync(p.n, text_chunk(p.size)), media_type="text/plain")
    await response(scope, receive, send)


async def sse(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    response = StreamingResponse(as_sse(produce(p.n, SSE_DATA)), media_type="text/event-stream")
    await response(scope, receive, send)


async def ndjson(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    content = as_ndjson(produce(p.n, NDJSON_ITEM))
    await StreamingResponse(content, media_type="application/x-ndjson")(scope, receive, send)


async def idle(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    content = produce_then_idle(IDLE_FIRST_CHUNK, log, p.token)
    await StreamingResponse(content, media_type="text/plain")(scope, receive, send)


async def idle_sse(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    content = as_sse(produce_then_idle(SSE_DATA, log, p.token))
    await StreamingResponse(content, media_type="text/event-stream")(scope, receive, send)


log = CleanupLog()
app = bench_app(
    "starlette",
    {"/text": text, "/text-sync": text_sync, "/sse": sse, "/ndjson": ndjson, "/idle": idle,
     "/idle-sse": idle_sse},
    log,
)
