"""Responses that set connection headers or carry hostile error headers, for
tests/test_framing.py on uvicorn (httptools, h11) and hypercorn (HTTP/2)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from streaming import StreamingResponse, StreamRefused


async def lines() -> AsyncIterator[str]:
    for i in range(3):
        yield f"line {i}\n"


async def keep_alive(request: Request) -> StreamingResponse:
    # The tutorial's /headers endpoint sets this: it must keep working.
    return StreamingResponse(lines(), media_type="text/plain",
                             headers={"Connection": "keep-alive", "Keep-Alive": "timeout=5"})


async def refuse() -> AsyncIterator[str]:
    raise StreamRefused(503, "busy", headers={
        "Transfer-Encoding": "chunked", "Upgrade": "h2c", "Trailer": "x-sum",
        "Keep-Alive": "timeout=5", "Retry-After": "2"})
    yield ""


async def refused_error(request: Request) -> StreamingResponse:
    return StreamingResponse(refuse(), media_type="text/plain")


async def closing() -> AsyncIterator[str]:
    raise StreamRefused(400, "no", headers={"Connection": "close"})
    yield ""


async def close_error(request: Request) -> StreamingResponse:
    return StreamingResponse(closing(), media_type="text/plain")


#: A value each server refuses to write: h11 one with surrounding whitespace,
#: httptools one with a control character.
BAD_VALUES = {"space": b" v", "control": b"a\x01b"}


async def bad_start(request: Request) -> StreamingResponse:
    response = StreamingResponse(lines(), media_type="text/plain")
    # Past the constructor's checks, as a framework extending raw_headers could.
    response.raw_headers.append((b"x-bad", BAD_VALUES[request.query_params["kind"]]))
    return response


app = Starlette(routes=[Route("/keep-alive", keep_alive), Route("/refused", refused_error),
                        Route("/close", close_error), Route("/bad-start", bad_start)])
