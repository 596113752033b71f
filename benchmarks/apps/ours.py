"""This library: ``StreamingResponse``, ``NDJSONResponse`` and, once it lands,
``streaming.responses.sse.EventSourceResponse``.

The SSE response is imported when the app is built; if that import fails for
any reason, its scenarios are served as 501 and ``/meta`` reports them
"unavailable" with the error, so the suite reports instead of crashing.
"""

from __future__ import annotations

from typing import Any

from benchmarks.apps.common import (
    CleanupLog,
    Handler,
    Params,
    Receive,
    Scope,
    Send,
    bench_app,
    produce,
    produce_then_idle,
)
from benchmarks.workload import IDLE_FIRST_CHUNK, NDJSON_ITEM, SSE_DATA, text_chunk
from streaming import NDJSONResponse, StreamingResponse


async def text(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    response = StreamingResponse(produce(p.n, text_chunk(p.size)), media_type="text/plain")
    await response(scope, receive, send)


async def ndjson(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    await NDJSONResponse(produce(p.n, NDJSON_ITEM))(scope, receive, send)


async def text_batched(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    content = produce(p.n, text_chunk(p.size))
    await StreamingResponse(content, media_type="text/plain", batch=True)(scope, receive, send)


async def ndjson_batched(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    await NDJSONResponse(produce(p.n, NDJSON_ITEM), batch=True)(scope, receive, send)


async def sse_batched(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    from streaming import EventSourceResponse

    await EventSourceResponse(produce(p.n, SSE_DATA), batch=True)(scope, receive, send)


async def idle(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    content = produce_then_idle(IDLE_FIRST_CHUNK, log, p.token)
    await StreamingResponse(content, media_type="text/plain")(scope, receive, send)


def sse_handlers(response_class: Any) -> dict[str, Handler]:
    """The SSE scenarios on our ``EventSourceResponse``: default keep-alive for
    throughput, pings disabled (``ping=0``) for the idle connections."""

    async def sse(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
        await response_class(produce(p.n, SSE_DATA))(scope, receive, send)

    async def idle_sse(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
        content = produce_then_idle(SSE_DATA, log, p.token)
        await response_class(content, ping=0)(scope, receive, send)

    async def ping_sse(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
        content = produce_then_idle(SSE_DATA, log, p.token)
        await response_class(content, ping=p.ping)(scope, receive, send)

    return {"/sse": sse, "/idle-sse": idle_sse, "/ping-sse": ping_sse}


def load_sse() -> tuple[dict[str, Handler], dict[str, str]]:
    """Return the SSE handlers, or none and the reason they are unavailable."""
    try:
        from streaming.responses.sse import EventSourceResponse
    except Exception as exc:  # any failure to import means "not there yet"
        reason = f"unavailable: {type(exc).__name__}: {exc}"
        return {}, dict.fromkeys(("/sse", "/idle-sse", "/ping-sse"), reason)
    return sse_handlers(EventSourceResponse), {}


log = CleanupLog()
_sse_routes, _unavailable = load_sse()
app = bench_app(
    "streaming",
    {"/text": text, "/ndjson": ndjson, "/idle": idle, **_sse_routes},
    log,
    unavailable=_unavailable,
)

#: The same responses with ``batch=True`` (opportunistic batching): only the
#: throughput scenarios, where batching is meant to help.
batched_app = bench_app(
    "streaming-batch",
    {"/text": text_batched, "/ndjson": ndjson_batched, "/sse": sse_batched},
    log,
)
