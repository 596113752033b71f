"""What is about Redis only: two uvicorn workers sharing one limit, a worker
killed while holding slots (its leases expire), a lease renewed past its ttl
while the stream runs, and Redis unreachable (503, not a waived limit). The
behaviour common to every store is in test_limiter.py."""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from typing import cast

import anyio
import anyio.to_thread
import httpx
import pytest

from streaming import StreamingResponse, StreamLimiter
from streaming._types import Receive, Scope, Send
from streaming.limits.redis import RedisSlots
from streaming.testing import StreamingClient
from tests.redis_server import RedisServer
from tests.servers import uvicorn_process

TTL = 1.0


def workers(server: RedisServer, prefix: str, count: int, stack: ExitStack
            ) -> list[tuple[subprocess.Popen[bytes], str]]:
    env = {"SLOTS_URL": server.url, "SLOTS_PREFIX": prefix, "SLOTS_MAX": "2",
           "SLOTS_TTL": str(TTL)}
    return [stack.enter_context(uvicorn_process("tests.apps.limited:app", env=env))
            for _ in range(count)]


@asynccontextmanager
async def open_stream(client: httpx.AsyncClient, url: str) -> AsyncIterator[httpx.Response]:
    async with client.stream("GET", url + "/endless") as response:
        assert response.status_code == 200
        # Kept: a dropped iterator may close the stream. httpx says AsyncIterator;
        # it is an async generator.
        chunks = cast("AsyncGenerator[bytes, None]", response.aiter_bytes())
        await anext(chunks)  # the stream is open and holds a slot
        yield response
        await chunks.aclose()


async def wait_until_held(slots: RedisSlots, count: int) -> None:
    # The state is in Redis (another process expires the lease): nothing to
    # wait on but the count itself, asked again under a deadline.
    with anyio.fail_after(10 * TTL):
        while await slots.held("all") != count:  # noqa: ASYNC110
            await anyio.sleep(TTL / 20)


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as processes:
        yield processes


async def test_two_workers_share_one_limit_and_a_killed_one_gives_its_slots_back(
        shared_redis_server: RedisServer, prefix: str, stack: ExitStack) -> None:
    (doomed, doomed_url), (_, survivor_url) = workers(shared_redis_server, prefix, 2, stack)
    async with RedisSlots(shared_redis_server.url, prefix=prefix) as slots, \
            httpx.AsyncClient(timeout=10) as client:
        async with open_stream(client, doomed_url), open_stream(client, survivor_url) as kept:
            # One limit of 2 across both processes: each refuses a third.
            for url in (doomed_url, survivor_url):
                refused = await client.get(url + "/short")
                assert refused.status_code == 429, refused.text
                assert refused.headers["retry-after"] == "3"
            assert await slots.held("all") == 2
            doomed.send_signal(signal.SIGKILL)  # holding a slot, no chance to release it
            await anyio.to_thread.run_sync(doomed.wait, 10)
            # Its lease stops being renewed and expires within the ttl...
            await wait_until_held(slots, 1)
            # ...so the survivor has a free slot again, and the open stream still runs.
            assert (await client.get(survivor_url + "/short")).status_code == 200
            assert not kept.is_closed
        # A stream that ends releases at once (no waiting for the ttl).
        await wait_until_held(slots, 0)


async def test_a_lease_outlives_its_ttl_while_the_stream_runs(
        shared_redis_server: RedisServer, prefix: str) -> None:
    gone = anyio.Event()

    async def app_body() -> AsyncIterator[bytes]:
        yield b"open\n"
        await gone.wait()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await StreamingResponse(app_body())(scope, receive, send)

    async with RedisSlots(shared_redis_server.url, prefix=prefix, ttl=0.6) as slots:
        client = StreamingClient(StreamLimiter(app, 1, slots=slots))
        with anyio.fail_after(10):
            async with client.stream("GET", "/") as response:
                await response.next_chunk()
                started = anyio.current_time()
                # The subject is time passing: two and a half ttls, renewed
                # every third of one.
                await anyio.sleep(1.5)
                assert anyio.current_time() - started >= 1.5
                assert await slots.held("all") == 1
                assert (await client.get("/")).status_code == 429
                gone.set()
                await response.read()
            assert await slots.held("all") == 0


async def test_redis_unreachable_is_a_503_not_a_waived_limit(redis_server: RedisServer,
                                                             prefix: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the app must not run without a slot")

    slots = RedisSlots(redis_server.url, prefix=prefix, timeout=0.5)
    client = StreamingClient(StreamLimiter(app, 1, slots=slots))
    not_open = await client.get("/")
    async with slots:
        redis_server.kill()
        with anyio.fail_after(10):
            down = await client.get("/")
    for response in (not_open, down):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
