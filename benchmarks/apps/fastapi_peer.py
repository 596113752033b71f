"""FastAPI 0.165 path operations: a raw stream (``response_class=StreamingResponse``),
SSE (``response_class=fastapi.sse.EventSourceResponse``) and JSON Lines (an async
generator path operation with the default response class), each declared the
way FastAPI's documentation does.

Each path operation delegates to the shared producer, so it adds one generator
layer of its own. FastAPI JSON-encodes SSE ``data`` (a str item goes out as
``data: "token-..."``), which ``/meta`` tells the client. Its keep-alive is a
fixed 15 s module constant, so ``/ping-sse`` is n/a and ``/idle-sse`` cannot
disable pings (none fire while the suite holds the connections).
"""

import json
from collections.abc import AsyncIterable, Iterable

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.sse import EventSourceResponse

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
api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@api.get("/text", response_class=StreamingResponse)
async def text(n: int, size: int = 16) -> AsyncIterable[bytes]:
    async for chunk in produce(n, text_chunk(size)):
        yield chunk


@api.get("/text-sync", response_class=StreamingResponse)
def text_sync(n: int, size: int = 16) -> Iterable[bytes]:
    yield from produce_sync(n, text_chunk(size))


@api.get("/sse", response_class=EventSourceResponse)
async def sse(n: int) -> AsyncIterable[str]:
    async for item in produce(n, SSE_DATA):
        yield item


@api.get("/ndjson")
async def ndjson(n: int) -> AsyncIterable[dict[str, str]]:
    async for item in produce(n, NDJSON_ITEM):
        yield item


@api.get("/idle", response_class=StreamingResponse)
async def idle(token: str = "") -> AsyncIterable[bytes]:
    async for chunk in produce_then_idle(IDLE_FIRST_CHUNK, log, token):
        yield chunk


@api.get("/idle-sse", response_class=EventSourceResponse)
async def idle_sse(token: str = "") -> AsyncIterable[str]:
    async for item in produce_then_idle(SSE_DATA, log, token):
        yield item


async def to_fastapi(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    await api(scope, receive, send)


app = bench_app(
    "fastapi",
    dict.fromkeys(("/text", "/text-sync", "/sse", "/ndjson", "/idle", "/idle-sse"), to_fastapi),
    log,
    unavailable={"/ping-sse": "n/a: keep-alive interval fixed at 15 s"},
    sse_data_on_wire=json.dumps(SSE_DATA),
)
