"""``sse_starlette.EventSourceResponse``: SSE only (its own default ``\\r\\n``
separator and 15 s keep-alive for throughput; ``ping=0`` disables keep-alives
on the idle connections). Importing it patches uvicorn's exit handler, which is
why each implementation runs in its own server process.
"""

from __future__ import annotations

from sse_starlette import EventSourceResponse

from benchmarks.apps.common import (
    CleanupLog,
    Params,
    Receive,
    Scope,
    Send,
    bench_app,
    produce,
    produce_then_idle,
)
from benchmarks.workload import SSE_DATA


async def sse(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    await EventSourceResponse(produce(p.n, SSE_DATA))(scope, receive, send)


async def idle_sse(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    content = produce_then_idle(SSE_DATA, log, p.token)
    await EventSourceResponse(content, ping=0)(scope, receive, send)


async def ping_sse(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    content = produce_then_idle(SSE_DATA, log, p.token)
    await EventSourceResponse(content, ping=p.ping)(scope, receive, send)


log = CleanupLog()
app = bench_app("sse-starlette", {"/sse": sse, "/idle-sse": idle_sse, "/ping-sse": ping_sse}, log)
