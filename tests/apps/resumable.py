"""Streams a client can resume: numbered SSE events and NDJSON lines that
start after the client's position, so a restarted server carries on where a
killed one stopped. ``make_app()`` builds a fresh app (its own counters)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from streaming import (
    EventSourceResponse,
    ServerSentEvent,
    StreamingResponse,
    read_last_event_id,
)


class Cut(Exception):
    """Raised after the headers: the server closes the connection mid-body."""


def _ints(request: Request, **defaults: int) -> dict[str, int]:
    return {name: int(request.query_params.get(name, default))
            for name, default in defaults.items()}


def _stalls(request: Request) -> set[int]:
    """``?stall=15,30``: positions where a stream stops and waits (to be
    killed), unless the connection started there (a resumed one goes on)."""
    return {int(p) for p in request.query_params.get("stall", "").split(",") if p}


def make_app() -> Starlette:
    hits: dict[str, int] = {}

    async def events(request: Request) -> Response:
        q = _ints(request, n=50, pace_ms=0, cut_after=0, retry_ms=20, half=0)
        last = read_last_event_id(request.scope)
        start = int(last) + 1 if last is not None else 0
        if start >= q["n"]:
            return Response(status_code=204)  # all sent: the reader stops

        async def produce() -> AsyncIterator[ServerSentEvent | bytes]:
            stalls = _stalls(request)
            for i in range(start, q["n"]):
                if i in stalls and i != start:
                    await anyio.sleep_forever()
                if q["cut_after"] and i - start == q["cut_after"]:
                    if q["half"]:  # the cut falls inside an event (bytes pass as they are)
                        yield b"id: %d\ndata: event %d" % (i, i)
                    raise Cut
                yield ServerSentEvent(data=f"event {i}", id=str(i),
                                      retry=q["retry_ms"] if i == start else None)
                await anyio.sleep(q["pace_ms"] / 1000)

        return EventSourceResponse(produce(), error_event=None)

    async def lines(request: Request) -> Response:
        q = _ints(request, n=50, pace_ms=0, cut_after=0, after=0, half=0)

        async def produce() -> AsyncIterator[bytes]:
            stalls = _stalls(request)
            for i in range(q["after"], q["n"]):
                if i in stalls and i != q["after"]:
                    await anyio.sleep_forever()
                if q["cut_after"] and i - q["after"] == q["cut_after"]:
                    if q["half"]:  # the cut falls inside a line
                        yield b'{"i": %d' % i
                    raise Cut
                yield b'{"i": %d}\n' % i
                await anyio.sleep(q["pace_ms"] / 1000)

        # Plain bytes, so a cut is only a cut (NDJSONResponse would first
        # send its error line).
        return StreamingResponse(produce(), media_type="application/x-ndjson")

    async def flaky(request: Request) -> Response:
        q = _ints(request, fail=2, status=503)
        key = request.query_params.get("key", "")
        hits[key] = hits.get(key, 0) + 1
        if hits[key] <= q["fail"]:
            return PlainTextResponse("busy", status_code=q["status"],
                                     headers={"retry-after": "0"})
        return await events(request)

    async def status(request: Request) -> Response:
        code = int(request.path_params["code"])
        return PlainTextResponse(f"status {code}\x1b[2J", status_code=code)

    async def wrong_type(request: Request) -> Response:
        return PlainTextResponse("data: not an event stream\n\n")

    async def bad_json(request: Request) -> Response:
        return Response(b'{"i": 0}\nnot json\n', media_type="application/x-ndjson")

    return Starlette(routes=[
        Route("/bad-json", bad_json), Route("/events", events), Route("/lines", lines),
        Route("/flaky", flaky), Route("/status/{code}", status),
        Route("/wrong-type", wrong_type),
    ])


app = make_app()
