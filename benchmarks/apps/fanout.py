"""Fan-out: one event published, the same bytes delivered to every subscriber.

Two apps, each serving ``GET /subscribe`` (an SSE stream of the topic) and
``GET /publish?n=&interval=`` (publish ``n`` events ``interval`` seconds
apart, each event's ``data`` the ``time.monotonic()`` of its publish, then
answer 200), run by uvicorn with its lifespan on:

- ``hub_app``: ours, ``Hub()`` (the in-memory backend) and
  ``EventSourceResponse(hub.subscriber(topic), ping=0)``: the event is encoded
  once, framed with its id once, and the same bytes queued for every
  subscriber, whose producer sends its queue;
- ``loop_app``: the ceiling, a hand-written loop: the event encoded once, put
  on every subscriber's ``asyncio.Queue``, and each subscriber's task sends
  what its queue holds, beside a disconnect listener (as in ``raw.py``).

A subscriber counts as ready once it has received its first block (the hub's
id-only announcement; the loop's opening comment).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from urllib.parse import parse_qsl

import anyio

from benchmarks.apps.common import Receive, Scope, Send, send_json
from streaming import EventSourceResponse
from streaming.hub import Hub

TOPIC = "bench"
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


def stamp() -> str:
    return f"{time.monotonic():.9f}"


def publish_query(scope: Scope) -> tuple[int, float]:
    query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
    return int(query["n"]), float(query["interval"])


async def serve_lifespan(receive: Receive, send: Send,
                         running: Callable[[], contextlib.AbstractAsyncContextManager[object]]
                         ) -> None:  # fmt: skip
    """The ASGI lifespan protocol around ``running()``."""
    await receive()  # lifespan.startup
    async with running():
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
    await send({"type": "lifespan.shutdown.complete"})


# -- ours -------------------------------------------------------------------------

hub = Hub()


async def publish_to_hub(n: int, interval: float) -> None:
    for _ in range(n):
        await hub.publish(TOPIC, stamp())
        await anyio.sleep(interval)


async def hub_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send, lambda: hub)
    elif scope["path"] == "/subscribe":
        await EventSourceResponse(hub.subscriber(TOPIC), ping=0)(scope, receive, send)
    elif scope["path"] == "/publish":
        await publish_to_hub(*publish_query(scope))
        await send_json(send, 200, b"{}")
    elif scope["path"] == "/meta":  # the suite's readiness check
        await send_json(send, 200, b'{"paths": {}}')
    else:
        await send_json(send, 404, b"{}")


# -- the hand-written loop -----------------------------------------------------------

subscribers: set[asyncio.Queue[bytes]] = set()


async def publish_to_queues(n: int, interval: float) -> None:
    for i in range(n):
        body = b"id: %d\ndata: %s\n\n" % (i, stamp().encode())  # encoded once
        for queue in subscribers:
            queue.put_nowait(body)
        await asyncio.sleep(interval)


async def subscribe_loop(receive: Receive, send: Send) -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    subscribers.add(queue)
    try:
        await send({"type": "http.response.start", "status": 200, "headers": _SSE})
        await send({"type": "http.response.body", "body": b": ready\n\n", "more_body": True})
        pump = asyncio.ensure_future(_send_queue(queue, send))
        listener = asyncio.ensure_future(_wait_for_disconnect(receive))
        await asyncio.wait((pump, listener), return_when=asyncio.FIRST_COMPLETED)
        for task in (pump, listener):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        subscribers.discard(queue)


async def _send_queue(queue: asyncio.Queue[bytes], send: Send) -> None:
    while True:
        await send({"type": "http.response.body", "body": await queue.get(), "more_body": True})


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def loop_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send, contextlib.nullcontext)
    elif scope["path"] == "/subscribe":
        await subscribe_loop(receive, send)
    elif scope["path"] == "/publish":
        await publish_to_queues(*publish_query(scope))
        await send_json(send, 200, b"{}")
    elif scope["path"] == "/meta":  # the suite's readiness check
        await send_json(send, 200, b'{"paths": {}}')
    else:
        await send_json(send, 404, b"{}")
