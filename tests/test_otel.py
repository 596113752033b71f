"""OpenTelemetry: one SERVER span per stream, ended with it, with the outcome,
bytes, chunks and time to first byte; no span per chunk; the producer's own
spans are its children; an incoming traceparent is honoured. Collected with
the SDK's in-memory exporter (a provider of the test's own: no global)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from streaming import StreamingResponse, StreamLimiter
from streaming.observe import StreamWatch
from streaming.otel import StreamTracer
from streaming.testing import StreamingClient


@pytest.fixture
def exporter() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield provider, spans
    provider.shutdown()


def app_with(provider: TracerProvider, started: anyio.Event | None = None) -> Any:
    tracer = provider.get_tracer("app")

    async def tokens(request: Request) -> StreamingResponse:
        async def produce() -> AsyncIterator[bytes]:
            with tracer.start_as_current_span("upstream call"):
                pass
            for n in range(100):
                yield b"token %d\n" % n
        return StreamingResponse(produce())

    async def broken(request: Request) -> StreamingResponse:
        async def produce() -> AsyncIterator[bytes]:
            yield b"partial\n"
            raise KeyError("gone")
        return StreamingResponse(produce())

    async def idle(request: Request) -> StreamingResponse:
        async def produce() -> AsyncIterator[bytes]:
            yield b"open\n"
            await anyio.sleep_forever()
        return StreamingResponse(produce())

    routes = Starlette(routes=[Route("/tokens/{model}", tokens), Route("/broken", broken),
                               Route("/idle", idle)])
    return StreamWatch(StreamLimiter(routes, 1), StreamTracer(provider))


async def test_one_span_per_stream_with_its_figures(
        exporter: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, spans = exporter
    response = await StreamingClient(app_with(provider)).get("/tokens/small")
    stream, = (s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER)
    assert stream.name == "GET /tokens/{model}"  # the route template, not the path
    attributes = dict(stream.attributes or {})
    assert attributes["http.route"] == "/tokens/{model}"
    assert attributes["url.path"] == "/tokens/small"
    assert attributes["http.response.status_code"] == 200
    assert attributes["streaming.outcome"] == "completed"
    assert attributes["streaming.chunks_sent"] == 100
    assert attributes["streaming.bytes_sent"] == len(response.body)
    ttfb = attributes["streaming.time_to_first_byte"]
    assert isinstance(ttfb, float) and ttfb >= 0
    assert stream.end_time is not None and stream.start_time is not None
    assert ttfb <= (stream.end_time - stream.start_time) / 1e9
    # 100 chunks, two spans in all: the stream and the producer's own call.
    assert len(spans.get_finished_spans()) == 2


async def test_the_producer_s_spans_are_children_of_the_stream(
        exporter: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, spans = exporter
    await StreamingClient(app_with(provider)).get("/tokens/small")
    by_name = {s.name: s for s in spans.get_finished_spans()}
    child, stream = by_name["upstream call"], by_name["GET /tokens/{model}"]
    assert child.parent is not None and child.parent.span_id == stream.context.span_id


async def test_an_incoming_traceparent_is_the_parent(
        exporter: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, spans = exporter
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    await StreamingClient(app_with(provider)).get(
        "/tokens/x", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    stream = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER)
    assert f"{stream.context.trace_id:032x}" == trace_id
    assert stream.parent is not None and f"{stream.parent.span_id:016x}" == "00f067aa0ba902b7"


async def test_an_error_after_the_headers_marks_the_span(
        exporter: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, spans = exporter
    client = StreamingClient(app_with(provider), raise_app_exceptions=False)
    await client.get("/broken")
    stream, = spans.get_finished_spans()
    assert stream.status.status_code is StatusCode.ERROR
    assert stream.attributes is not None
    assert stream.attributes["streaming.outcome"] == "producer_error"
    assert stream.attributes["error.type"] == "KeyError"
    assert stream.attributes["streaming.chunks_sent"] == 1
    assert [e.name for e in stream.events] == ["exception"]


async def test_the_span_ends_when_the_stream_ends_and_refusals_get_one(
        exporter: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, spans = exporter
    client = StreamingClient(app_with(provider))
    with anyio.fail_after(5):
        async with client.stream("GET", "/idle") as response:
            await response.next_chunk()
            assert spans.get_finished_spans() == ()  # headers out, stream open: no end yet
            assert (await client.get("/idle")).status_code == 429
            refused, = spans.get_finished_spans()
            assert refused.attributes is not None
            assert refused.attributes["streaming.outcome"] == "refused_limit"
    stream = spans.get_finished_spans()[-1]
    assert stream.attributes is not None
    assert stream.attributes["streaming.outcome"] == "client_disconnected"
