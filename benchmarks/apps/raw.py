"""The ceiling: a hand-written ASGI loop, as fast as a careful human writes it.

Per chunk it does exactly what the ASGI HTTP spec requires and nothing else: one
``http.response.body`` message with ``more_body=True``. A listener task awaits
``receive()`` beside it, as every honest streaming response must on ASGI 2.3
servers (uvicorn reports a departed client only there), and cancels the pump
when ``http.disconnect`` arrives; the pump's cancellation is delivered into the
producer's ``await``, so its ``finally`` runs. Plain asyncio tasks, because this
app only ever runs on uvicorn's uvloop and they are the cheapest race there is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

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

Encode = Callable[[Any], bytes]

_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
_NDJSON = [(b"content-type", b"application/x-ndjson")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
# One encoder built once: json.dumps() with arguments builds a new one per call.
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_sse(data: str) -> bytes:
    return b"data: %s\n\n" % data.encode()


def encode_ndjson(item: object) -> bytes:
    return (_encode_json(item) + "\n").encode()


async def stream(
    receive: Receive,
    send: Send,
    headers: list[tuple[bytes, bytes]],
    items: AsyncIterator[Any],
    encode: Encode | None = None,
) -> None:
    """Send ``items`` as the body, racing a disconnect listener; close ``items``."""
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    pump = asyncio.ensure_future(_pump(send, items, encode))
    listener = asyncio.ensure_future(_wait_for_disconnect(receive))
    try:
        await asyncio.wait((pump, listener), return_when=asyncio.FIRST_COMPLETED)
    finally:
        listener.cancel()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        with contextlib.suppress(asyncio.CancelledError):
            await pump  # re-raises a producer error
        await items.aclose()  # type: ignore[attr-defined]


async def _pump(send: Send, items: AsyncIterator[Any], encode: Encode | None) -> None:
    if encode is None:
        async for chunk in items:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    else:
        async for item in items:
            await send({"type": "http.response.body", "body": encode(item), "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def in_threads(iterator: Iterator[Any]) -> AsyncIterator[Any]:
    """A sync iterator as a careful human wraps it: each ``next()`` in the
    loop's default executor, so a blocking producer never stalls the loop; the
    iterator is closed in a thread too."""
    loop = asyncio.get_running_loop()
    done = object()
    try:
        while (item := await loop.run_in_executor(None, next, iterator, done)) is not done:
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            await loop.run_in_executor(None, close)


async def _ping_forever(send: Send, interval: float) -> None:
    # Scheduled against a fixed origin so pings do not drift by send() time.
    origin = time.monotonic()
    beat = 0
    while True:
        beat += 1
        await asyncio.sleep(max(0.0, origin + beat * interval - time.monotonic()))
        await send({"type": "http.response.body", "body": b": ping\n\n", "more_body": True})


async def text(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    await stream(receive, send, _TEXT, produce(p.n, text_chunk(p.size)))


async def text_sync(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    await stream(receive, send, _TEXT, in_threads(produce_sync(p.n, text_chunk(p.size))))


async def sse(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    await stream(receive, send, _SSE, produce(p.n, SSE_DATA), encode_sse)


async def ndjson(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    await stream(receive, send, _NDJSON, produce(p.n, NDJSON_ITEM), encode_ndjson)


async def idle(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    await stream(receive, send, _TEXT, produce_then_idle(IDLE_FIRST_CHUNK, log, p.token))


async def idle_sse(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    await stream(receive, send, _SSE, produce_then_idle(SSE_DATA, log, p.token), encode_sse)


async def ping_sse(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
    pinger = asyncio.ensure_future(_ping_forever(send, p.ping))
    try:
        await idle_sse(p, scope, receive, send)
    finally:
        pinger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pinger


log = CleanupLog()
app = bench_app(
    "raw",
    {
        "/text": text,
        "/text-sync": text_sync,
        "/sse": sse,
        "/ndjson": ndjson,
        "/idle": idle,
        "/idle-sse": idle_sse,
        "/ping-sse": ping_sse,
    },
    log,
)
