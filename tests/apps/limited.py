"""A worker whose streams count against slots in Redis, for running several
uvicorn processes on one redis-server. Settings come from the environment:
``SLOTS_URL``, ``SLOTS_PREFIX``, ``SLOTS_MAX``, ``SLOTS_TTL``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from streaming import StreamingResponse, StreamLimiter
from streaming.limits.redis import RedisSlots


async def endless(request: Request) -> StreamingResponse:
    async def produce() -> AsyncIterator[bytes]:
        yield b"open %d\n" % os.getpid()
        await anyio.sleep_forever()
    return StreamingResponse(produce())


async def short(request: Request) -> StreamingResponse:
    return StreamingResponse([b"done\n"])


slots = RedisSlots(os.environ.get("SLOTS_URL", "redis://127.0.0.1:6379/0"),
                   prefix=os.environ.get("SLOTS_PREFIX", "test"),
                   ttl=float(os.environ.get("SLOTS_TTL", "10")))
app = StreamLimiter(
    Starlette(routes=[Route("/endless", endless), Route("/short", short)],
              lifespan=slots.lifespan),
    int(os.environ.get("SLOTS_MAX", "2")), slots=slots, retry_after=3)
