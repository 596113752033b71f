"""What every benchmark app shares: the producers, the parameters, the harness endpoints.

Each implementation module (``raw``, ``ours``, ``starlette_peer``, ...) builds a
table of scenario paths to handlers and wraps it with :func:`bench_app`, which
adds the harness endpoints the suite needs and which are not measured:

- ``GET /meta``: JSON saying which scenario paths this implementation serves,
  which are unavailable and why, and the exact SSE ``data`` it puts on the wire;
- ``GET /cleanup?token=T&timeout=S``: long-polls until the idle producer started
  with ``token=T`` has run its ``finally``, and answers the ``time.monotonic()``
  it ran at (``CLOCK_MONOTONIC`` is system-wide on Linux, so the client process
  can subtract the time it closed its socket). No polling loop competes with
  the server for its one core.
- ``GET /tracemalloc?action=snapshot`` and ``?action=diff&n=N``: in a server
  started with ``PYTHONTRACEMALLOC`` (``benchmarks.memory`` does), remember
  the traced allocations, then answer what was allocated since, per
  connection, by allocating line (404 when not tracing).
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import anyio

from benchmarks.workload import SSE_DATA

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

T = TypeVar("T")

#: The scenario paths; an implementation serves the ones it can.
SCENARIO_PATHS = ("/text", "/text-sync", "/sse", "/ndjson", "/idle", "/idle-sse", "/ping-sse")


@dataclass(frozen=True, slots=True)
class Params:
    """The query parameters of a scenario request."""

    n: int = 0
    size: int = 16
    token: str = ""
    ping: float = 0.0

    @classmethod
    def parse(cls, query_string: bytes) -> Params:
        query = dict(parse_qsl(query_string.decode("latin-1")))
        return cls(
            n=int(query.get("n", "0")),
            size=int(query.get("size", "16")),
            token=query.get("token", ""),
            ping=float(query.get("ping", "0")),
        )


Handler = Callable[[Params, Scope, Receive, Send], Awaitable[None]]


class CleanupLog:
    """When each idle producer's ``finally`` ran, by token, with waiters."""

    def __init__(self) -> None:
        self._times: dict[str, float] = {}
        self._waiters: dict[str, anyio.Event] = {}

    def record(self, token: str) -> None:
        self._times[token] = time.monotonic()
        waiter = self._waiters.pop(token, None)
        if waiter is not None:
            waiter.set()

    async def wait_for_cleanup(self, token: str) -> float:
        """Return when the producer started with ``token`` ran its ``finally``."""
        if token not in self._times:
            waiter = self._waiters.setdefault(token, anyio.Event())
            try:
                await waiter.wait()
            finally:
                self._waiters.pop(token, None)
        return self._times.pop(token)


async def produce(n: int, item: T) -> AsyncIterator[T]:
    """The producer of every throughput scenario: ``item``, ``n`` times."""
    for _ in range(n):
        yield item


def produce_sync(n: int, item: T) -> Iterator[T]:
    """The same producer written as a sync generator (a sync driver, a file
    API): every implementation runs its ``next()`` in a worker thread."""
    for _ in range(n):
        yield item


async def produce_then_idle(first: T, log: CleanupLog, token: str) -> AsyncIterator[T]:
    """Yield ``first``, then wait forever; record the cleanup time when closed."""
    try:
        yield first
        await anyio.sleep_forever()
    finally:
        if token:
            log.record(token)


def bench_app(
    name: str,
    routes: dict[str, Handler],
    log: CleanupLog,
    *,
    unavailable: dict[str, str] | None = None,
    sse_data_on_wire: str = SSE_DATA,
) -> ASGIApp:
    """Wrap an implementation's scenario handlers with the harness endpoints."""
    missing = dict(unavailable or {})
    meta = {
        "name": name,
        "paths": {
            path: "ok" if path in routes else missing.get(path, "n/a") for path in SCENARIO_PATHS
        },
        "sse_data_on_wire": sse_data_on_wire,
    }
    meta_body = json.dumps(meta).encode()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # uvicorn runs with --lifespan off; nothing else is expected
        path = scope["path"]
        handler = routes.get(path)
        if handler is not None:
            await handler(Params.parse(scope["query_string"]), scope, receive, send)
        elif path == "/meta":
            await send_json(send, 200, meta_body)
        elif path == "/cleanup":
            await answer_cleanup(log, scope, send)
        elif path == "/tracemalloc" and tracemalloc.is_tracing():
            await send_json(send, 200, traced.answer(scope["query_string"]))
        else:
            status = 501 if path in missing else 404
            await send_json(send, status, json.dumps({"error": missing.get(path, "n/a")}).encode())

    return app


class TracedSince:
    """The traced allocations since a snapshot, per connection, by line."""

    def __init__(self) -> None:
        self._base: tracemalloc.Snapshot | None = None

    def answer(self, query_string: bytes) -> bytes:
        query = dict(parse_qsl(query_string.decode("latin-1")))
        if query.get("action") == "snapshot":
            self._base = tracemalloc.take_snapshot()
            return b"{}"
        assert self._base is not None, "take a snapshot first"
        n = int(query["n"])
        stats = tracemalloc.take_snapshot().compare_to(self._base, "traceback")
        lines = [
            {"where": _where(stat.traceback[-1]), "caller": _caller(stat.traceback),
             "bytes": stat.size_diff / n, "blocks": stat.count_diff / n}
            for stat in stats if stat.size_diff
        ]  # fmt: skip
        return json.dumps({"lines": lines}).encode()


def _where(frame: tracemalloc.Frame) -> str:
    return f"{frame.filename}:{frame.lineno}"


def _caller(traceback: tracemalloc.Traceback) -> str:
    """The innermost frame in a response layer's own code (``streaming``,
    Starlette, ...): which of its lines made the allocation happen."""
    for frame in reversed(traceback):  # innermost first (most recent call last)
        if any(part in frame.filename for part in _LAYERS):
            return _where(frame)
    return _where(traceback[-1])


_LAYERS = ("/streaming/", "/starlette/", "/sse_starlette/", "/fastapi/", "/litestar/",
           "/aiohttp/", "/aiohttp_sse/", "/benchmarks/")


traced = TracedSince()


async def answer_cleanup(log: CleanupLog, scope: Scope, send: Send) -> None:
    query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
    at: float | None = None
    with anyio.move_on_after(float(query.get("timeout", "5"))):
        at = await log.wait_for_cleanup(query["token"])
    await send_json(send, 200, json.dumps({"finally_at": at}).encode())


async def send_json(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def sse_handlers(response_class: Any, log: CleanupLog) -> dict[str, Handler]:
    """The three SSE scenarios on any ``EventSourceResponse``-like class taking
    ``(content, ping=...)``: its default keep-alive for throughput, pings off
    (``ping=0``) for the idle connections, ``ping`` seconds for timeliness."""

    async def sse(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
        await response_class(produce(p.n, SSE_DATA))(scope, receive, send)

    async def idle_sse(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
        content = produce_then_idle(SSE_DATA, log, p.token)
        await response_class(content, ping=0)(scope, receive, send)

    async def ping_sse(p: Params, scope: Scope, receive: Receive, send: Send) -> None:
        content = produce_then_idle(SSE_DATA, log, p.token)
        await response_class(content, ping=p.ping)(scope, receive, send)

    return {"/sse": sse, "/idle-sse": idle_sse, "/ping-sse": ping_sse}
