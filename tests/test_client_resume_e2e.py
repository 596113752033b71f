"""The readers against our own server killed (SIGKILL) and restarted
mid-stream on the same port: every event, every line, exactly once.

The server holds each stream open at positions 15 and 30 (``stall``) until
it is killed there, so every kill lands mid-stream however loaded the
machine is."""

from __future__ import annotations

import signal
from contextlib import ExitStack
from typing import Any

import anyio
import anyio.to_thread
import httpx

from streaming.client import Backoff, NDJSONReader, SSEReader
from tests.servers import _listening_socket, uvicorn_process

APP = "tests.apps.resumable:app"
KILLS = 2


def free_port() -> int:
    probe = _listening_socket()
    port = int(probe.getsockname()[1])
    probe.close()
    return port


async def run_while_killing(reader: Any, port: int, every: int) -> list[int]:
    """Read everything; each time ``every`` more items have arrived, kill the
    server and start a new one on the same port."""
    received: list[int] = []
    arrived = [anyio.Event() for _ in range(KILLS)]

    async def read() -> None:
        async with reader:
            async for item in reader:
                received.append(int(item.id) if hasattr(item, "id") else item["i"])
                if len(received) % every == 0 and len(received) // every <= KILLS:
                    arrived[len(received) // every - 1].set()

    with ExitStack() as servers:
        server, _ = servers.enter_context(uvicorn_process(APP, port=port))
        async with anyio.create_task_group() as group:
            group.start_soon(read)
            for moment in arrived:
                await moment.wait()
                server.send_signal(signal.SIGKILL)
                await anyio.to_thread.run_sync(server.wait, 10)
                server, _ = servers.enter_context(uvicorn_process(APP, port=port))
    return received


async def test_sse_reader_survives_server_restarts_exactly_once() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/events?n=60&pace_ms=1&retry_ms=50&stall=15,30"
    async with httpx.AsyncClient() as client:
        reader = SSEReader(client, url, backoff=Backoff(initial=0.05, maximum=0.5),
                           deadline=60)
        with anyio.fail_after(60):
            received = await run_while_killing(reader, port, every=15)
    assert received == list(range(60))
    assert reader.attempts >= KILLS + 2  # three connections (and any refused), the 204


async def test_ndjson_reader_survives_server_restarts_exactly_once() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/lines?n=60&pace_ms=1&stall=15,30"
    async with httpx.AsyncClient() as client:
        reader = NDJSONReader(client, url, backoff=Backoff(initial=0.05, maximum=0.5),
                              deadline=60, resume=lambda n, last: {"after": str(last["i"] + 1)})
        with anyio.fail_after(60):
            received = await run_while_killing(reader, port, every=15)
    assert received == list(range(60))
    assert reader.attempts >= KILLS + 1
