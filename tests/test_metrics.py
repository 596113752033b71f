"""streaming.metrics in one process: each series from real streams through the
in-process client, the hub hooks, and the /metrics app's exposition."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from streaming import Drain, EventSourceResponse, StreamingResponse, StreamLimiter
from streaming.metrics import StreamMetrics
from streaming.observe import UNMATCHED, StreamWatch
from streaming.testing import StreamingClient

LABELS = {"route": UNMATCHED, "response_type": "StreamingResponse"}


def value(metrics: StreamMetrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


async def chunks(n: int, size: int) -> AsyncIterator[bytes]:
    for _ in range(n):
        yield b"x" * size


async def test_completed_streams_count_bytes_chunks_duration_and_first_byte() -> None:
    metrics = StreamMetrics()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await StreamingResponse(chunks(4, 10))(scope, receive, send)

    client = StreamingClient(StreamWatch(app, metrics))
    for _ in range(3):
        await client.get("/")
    assert value(metrics, "streaming_sent_bytes_total", **LABELS) == 120
    assert value(metrics, "streaming_sent_chunks_total", **LABELS) == 12
    assert value(metrics, "streaming_streams_total", reason="completed", **LABELS) == 3
    assert value(metrics, "streaming_time_to_first_byte_seconds_count", **LABELS) == 3
    assert value(metrics, "streaming_stream_duration_seconds_count", reason="completed",
                 **LABELS) == 3
    assert value(metrics, "streaming_active_streams", **LABELS) == 0


async def test_the_active_gauge_and_send_timeouts_drains_and_refusals() -> None:
    metrics = StreamMetrics()
    drain = Drain(grace=1)

    async def idle() -> AsyncIterator[str]:
        yield "open"
        await anyio.sleep_forever()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/stuck":  # a client that stops reading
            response = StreamingResponse(chunks(10_000, 1000), send_timeout=0.05)
        else:
            response = EventSourceResponse(idle(), drain=drain)
        await response(scope, receive, send)

    limited = StreamLimiter(app, 2)
    client = StreamingClient(StreamWatch(limited, metrics))
    slow_reader = StreamingClient(StreamWatch(limited, metrics), buffer=1)
    sse = {"route": UNMATCHED, "response_type": "EventSourceResponse"}
    with anyio.fail_after(5):
        async with client.stream("GET", "/sse") as first:
            await first.next_chunk()
            assert value(metrics, "streaming_active_streams", **sse) == 1
            async with client.stream("GET", "/sse") as second:
                await second.next_chunk()
                assert (await client.get("/")).status_code == 429  # two open: refused
            async with slow_reader.stream("GET", "/stuck") as stuck:
                await stuck.wait_for_app()  # never read: the send timeout ends it
            await drain.drain()
            await first.read()
    assert value(metrics, "streaming_send_timeouts_total", route=UNMATCHED) == 1
    assert value(metrics, "streaming_streams_total", reason="send_timeout", **LABELS) == 1
    assert value(metrics, "streaming_drained_streams_total", route=UNMATCHED) == 1
    assert value(metrics, "streaming_refused_streams_total", route=UNMATCHED,
                 why="limit") == 1
    assert value(metrics, "streaming_active_streams", **sse) == 0


def test_the_hub_hooks() -> None:
    metrics = StreamMetrics()
    metrics.hub_subscribers("prices", 3)
    metrics.hub_subscribers("prices", -1)
    metrics.hub_queue_depth("prices", 17)
    metrics.hub_overflow("prices")
    assert value(metrics, "streaming_hub_subscribers", hub="prices") == 2
    assert value(metrics, "streaming_hub_queue_depth", hub="prices") == 17
    assert value(metrics, "streaming_hub_overflows_total", hub="prices") == 1


async def test_the_metrics_app_serves_the_exposition_format(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = StreamMetrics()
    metrics.hub_overflow("h")
    response = await StreamingClient(metrics.app).get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert b'streaming_hub_overflows_total{hub="h"} 1.0' in response.body
    assert b"# TYPE streaming_active_streams gauge" in response.body
