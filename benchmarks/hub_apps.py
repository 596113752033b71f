"""Server side of ``python -m benchmarks.hub``: one fan-out app per setup,
picked by ``HUB_BENCH_APP``; each publishes ``HUB_BENCH_RATE`` events per
second to every subscriber of ``GET /events`` from a task started at
lifespan, each event carrying its publish time (``time.time()``) so the client
measures publish -> arrival.

- ``loop``: the ceiling, a hand-written loop: every connection's ``send`` in
  a list, and per event one pass writing the same pre-encoded bytes to each;
- ``ours``: ``Hub()`` (in memory) and ``EventSourceResponse(hub.subscriber())``;
- ``ours-inline``: the same with ``Hub(inline_sends=True)`` (the publisher's
  task sends to every waiting subscriber: ``streaming/driver/offers.py``);
- ``ours-redis``: the same on ``RedisBackend(HUB_BENCH_REDIS)`` (several
  workers; the publisher is the benchmark process);
- ``peer``: what users build today, ``broadcaster`` (memory) feeding
  ``sse_starlette.EventSourceResponse``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio

Scope = dict[str, Any]
APP = os.environ.get("HUB_BENCH_APP", "ours")
RATE = float(os.environ.get("HUB_BENCH_RATE", "10"))
TOPIC = "bench"


def payload(n: int) -> str:
    return json.dumps({"t": time.time(), "n": n}, separators=(",", ":"))


async def publish_forever(publish: Any) -> None:
    n = 0
    next_at = anyio.current_time()
    while True:
        next_at += 1 / RATE
        await anyio.sleep(max(0.0, next_at - anyio.current_time()))
        await publish(n)
        n += 1


def loop_app() -> Any:
    sends: list[Any] = []
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]

    async def publish(n: int) -> None:
        message = {"type": "http.response.body",
                   "body": f"data: {payload(n)}\n\n".encode(), "more_body": True}
        for send in list(sends):
            await send(message)

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await lifespan(receive, send, publish)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b": hi\n\n", "more_body": True})
        sends.append(send)
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        finally:
            sends.remove(send)

    return app


def ours_app(redis_url: str | None, inline_sends: bool = False) -> Any:
    from streaming import EventSourceResponse
    from streaming.hub import Hub, RedisBackend

    hub = Hub(RedisBackend(redis_url) if redis_url else None, history=100,
              max_queued_events=10_000, max_queued_bytes=1 << 24, inline_sends=inline_sends)

    async def publish(n: int) -> None:
        await hub.publish(TOPIC, payload(n))

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await lifespan(receive, send, None if redis_url else publish, hub)
        await EventSourceResponse(hub.subscriber(TOPIC), ping=None)(scope, receive, send)

    return app


def peer_app() -> Any:
    from broadcaster import Broadcast
    from sse_starlette import EventSourceResponse

    broadcast = Broadcast("memory://")

    async def publish(n: int) -> None:
        await broadcast.publish(TOPIC, payload(n))

    async def events() -> AsyncIterator[dict[str, str]]:
        async with broadcast.subscribe(TOPIC) as subscriber:
            yield {"comment": "hi"}
            # broadcaster 0.3 annotates Subscriber.__aiter__ as returning
            # "AsyncGenerator[Event | None, None] | None"; it yields Events only.
            async for event in subscriber:  # type: ignore[union-attr]
                yield {"data": event.message}  # type: ignore[union-attr]

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await lifespan(receive, send, publish, broadcast)
        await EventSourceResponse(events(), ping=3600)(scope, receive, send)

    return app


async def lifespan(receive: Any, send: Any, publish: Any, resource: Any = None) -> None:
    await receive()
    async with contextlib.AsyncExitStack() as stack:
        if resource is not None:
            await stack.enter_async_context(resource)
        async with anyio.create_task_group() as group:
            if publish is not None:
                group.start_soon(publish_forever, publish)
            await send({"type": "lifespan.startup.complete"})
            await receive()
            group.cancel_scope.cancel()
    await send({"type": "lifespan.shutdown.complete"})


app = {"loop": loop_app, "peer": peer_app}.get(APP, lambda: ours_app(
    os.environ.get("HUB_BENCH_REDIS") if APP == "ours-redis" else None,
    inline_sends=APP == "ours-inline"))()
