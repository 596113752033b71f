"""This library: ``StreamingResponse``, ``NDJSONResponse`` and
``EventSourceResponse``, as they come, and with ``batch=True``."""

from __future__ import annotations

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
    sse_handlers,
)
from benchmarks.workload import IDLE_FIRST_CHUNK, NDJSON_ITEM, SSE_DATA, text_chunk
from streaming import EventSourceResponse, NDJSONResponse, StreamingResponse


async def text(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    response = StreamingResponse(produce(p.n, text_chunk(p.size)), media_type="text/plain")
    await response(scope, receive, send)


async def text_sync(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    response = StreamingResponse(produce_sync(p.n, text_chunk(p.size)), media_type="text/plain")
    await response(scope, receive, send)


async def ndjson(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    await NDJSONResponse(produce(p.n, NDJSON_ITEM))(scope, receive, send)


async def text_batched(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    content = produce(p.n, text_chunk(p.size))
    await StreamingResponse(content, media_type="text/plain", batch=True)(scope, receive, send)


async def ndjson_batched(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    await NDJSONResponse(produce(p.n, NDJSON_ITEM), batch=True)(scope, receive, send)


async def sse_batched(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    await EventSourceResponse(produce(p.n, SSE_DATA), batch=True)(scope, receive, send)


async def idle(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    content = produce_then_idle(IDLE_FIRST_CHUNK, log, p.token)
    await StreamingResponse(content, media_type="text/plain")(scope, receive, send)


log = CleanupLog()
app = bench_app(
    "streaming",
    {"/text": text, "/text-sync": text_sync, "/ndjson": ndjson, "/idle": idle,
     **sse_handlers(EventSourceResponse, log)},
    log,
)

#: The same responses with ``batch=True`` (opportunistic batching): only the
#: throughput scenarios, where batching is meant to help.
batched_app = bench_app(
    "streaming-batch",
    {"/text": text_batched, "/ndjson": ndjson_batched, "/sse": sse_batched},
    log,
)
