"""streaming.metrics scraped from a real ``uvicorn --workers 2`` in
prometheus-client's multiprocess mode: the figures add up over both workers
and match what the clients did; the gauge of open streams counts live
workers only, also after one is killed (SIGKILL) while holding streams; so
does the gauge of hub subscribers."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import cast

import anyio
import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import uvicorn_process

REQUESTS, CHUNKS, SIZE = 24, 5, 100


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def fresh_connections() -> httpx.AsyncClient:
    # A connection per request, so the kernel spreads them over both workers.
    return httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0), timeout=10)


@asynccontextmanager
async def endless(client: httpx.AsyncClient, url: str, path: str = "/endless"
                  ) -> AsyncIterator[str]:
    async with client.stream("GET", url + path) as response:
        # httpx says AsyncIterator; it is an async generator.
        chunks = cast("AsyncGenerator[bytes, None]", response.aiter_bytes())
        await anext(chunks)  # open, and counted
        yield response.headers["x-pid"]
        await chunks.aclose()


async def scrape_until(client: httpx.AsyncClient, url: str, name: str, expected: float,
                       **labels: str) -> str:
    """Scrape until the series shows ``expected`` (the servers see a client
    leave, or a killed worker reaped, a moment after the fact)."""
    with anyio.fail_after(15):
        while True:
            text = (await client.get(url + "/metrics/")).text
            if sample(text, name, **labels) == expected:
                return text
            await anyio.sleep(0.05)


async def test_two_workers_add_up_and_a_killed_worker_leaves_the_open_gauge(
        tmp_path: Path) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    with uvicorn_process("tests.apps.observed:app", "--workers", "2", env=env) as (_, url):
        async with fresh_connections() as client:
            with anyio.fail_after(15):  # both workers up (the second may boot later)
                while len({(await client.get(url + "/pid")).text for _ in range(8)}) < 2:
                    pass
            pids = set()
            for _ in range(REQUESTS):
                response = await client.get(f"{url}/text?n={CHUNKS}&size={SIZE}")
                assert len(response.content) == CHUNKS * SIZE
                pids.add(response.headers["x-pid"])
            assert len(pids) == 2, "the requests did not reach both workers"

            async with AsyncExitStack() as streams:
                held: list[str] = []
                while min(held.count(p) for p in pids) < 2:  # at least two on each
                    held.append(await streams.enter_async_context(endless(client, url)))
                    assert len(held) < 40, "the open streams did not reach both workers"
                subscribed: list[str] = []   # and hub subscribers on both
                while len(set(subscribed)) < 2:
                    subscribed.append(await streams.enter_async_context(
                        endless(client, url, "/hub")))
                    assert len(subscribed) < 40, "the subscribers did not reach both workers"
                text = (await client.get(url + "/metrics/")).text
                text_labels = {"route": "/text", "response_type": "StreamingResponse"}
                assert sample(text, "streaming_sent_bytes_total", **text_labels) == \
                    REQUESTS * CHUNKS * SIZE
                assert sample(text, "streaming_sent_chunks_total", **text_labels) == \
                    REQUESTS * CHUNKS
                assert sample(text, "streaming_streams_total", reason="completed",
                              **text_labels) == REQUESTS
                assert sample(text, "streaming_time_to_first_byte_seconds_count",
                              **text_labels) == REQUESTS
                assert sample(text, "streaming_stream_duration_seconds_count",
                              reason="completed", **text_labels) == REQUESTS
                assert sample(text, "streaming_active_streams", route="/endless") == len(held)
                assert sample(text, "streaming_active_streams", route="/text") == 0
                assert sample(text, "streaming_hub_subscribers", hub="observed") == \
                    len(subscribed)

                victim = held[0]
                os.kill(int(victim), signal.SIGKILL)  # a worker dies holding streams
                survivors = sum(pid != victim for pid in held)
                text = await scrape_until(client, url, "streaming_active_streams",
                                          survivors, route="/endless")
                assert sample(text, "streaming_hub_subscribers", hub="observed") == \
                    sum(pid != victim for pid in subscribed)
                # What the dead worker counted before it died still counts.
                assert sample(text, "streaming_sent_bytes_total", **text_labels) == \
                    REQUESTS * CHUNKS * SIZE
            # The clients left: every open stream ends, the gauge returns to 0.
            await scrape_until(client, url, "streaming_active_streams", 0, route="/endless")
            await scrape_until(client, url, "streaming_hub_subscribers", 0, hub="observed")
