"""OpenTelemetry spans for streams (the ``otel`` extra: opentelemetry-api).

``StreamTracer`` is a ``StreamWatch`` observer: one SERVER span per stream,
started when the response starts and ended when the stream ends (not when
the start message is sent), with the outcome, the body bytes and chunks the
driver handed to ``send()`` (never ``Content-Length``, which a streamed body
does not have) and the time to the first body byte as attributes. There is
no span per chunk: OpenTelemetry's ASGI middleware makes one per ``send``
unless told otherwise.

The span is the current one while the response runs, so spans the producer
makes (an upstream call) are its children; an incoming ``traceparent`` is
honoured through the globally configured propagator.
"""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from streaming._types import Scope
from streaming.observe import StreamRecord, route_of
from streaming.outcome import EndReason

_SPAN, _TOKEN = "otel.span", "otel.token"


class StreamTracer:
    """One span per stream, from ``tracer_provider`` (the global one by default)."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.tracer = trace.get_tracer("streaming", tracer_provider=tracer_provider)

    def stream_opened(self, stream: StreamRecord) -> None:
        parent = propagate.extract(_headers(stream.scope))
        span = self.tracer.start_span(
            _span_name(stream.method, stream.route), context=parent, kind=SpanKind.SERVER,
            attributes={
                "http.request.method": stream.method,
                "url.path": stream.path,
                "http.route": stream.route,
                "client.address": (stream.client or "").rpartition(":")[0],
                "streaming.response_type": stream.response_type,
            })
        stream.notes[_SPAN] = span
        # Current while the response runs (open and close happen on its task).
        stream.notes[_TOKEN] = otel_context.attach(trace.set_span_in_context(span))

    def stream_closed(self, stream: StreamRecord) -> None:
        span = stream.notes.pop(_SPAN, None)
        token = stream.notes.pop(_TOKEN, None)
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]
        if not isinstance(span, trace.Span) or stream.outcome is None:
            return
        outcome = stream.outcome
        span.set_attributes({
            "http.response.status_code": outcome.status_code,
            "streaming.outcome": outcome.reason.value,
            "streaming.bytes_sent": outcome.bytes_sent,
            "streaming.chunks_sent": outcome.chunks_sent,
            "streaming.body_complete": outcome.body_complete,
        })
        if outcome.first_byte_after is not None:
            span.set_attribute("streaming.time_to_first_byte", outcome.first_byte_after)
        if outcome.error is not None:
            span.record_exception(outcome.error)
            span.set_attribute("error.type", type(outcome.error).__qualname__)
        if outcome.reason is EndReason.PRODUCER_ERROR or outcome.status_code >= 500:
            span.set_status(Status(StatusCode.ERROR, outcome.reason.value))
        span.end()

    def stream_refused(self, scope: Scope, why: str) -> None:
        method, route = str(scope.get("method", "")), route_of(scope)
        span = self.tracer.start_span(_span_name(method, route), kind=SpanKind.SERVER,
                                      attributes={"http.request.method": method,
                                                  "url.path": str(scope.get("path", "")),
                                                  "streaming.outcome": f"refused_{why}"})
        span.end()


def _span_name(method: str, route: str) -> str:
    # The route template, never the raw path: span names must stay few.
    return f"{method} {route}"


def _headers(scope: Scope | None) -> dict[str, str]:
    if scope is None:
        return {}
    return {bytes(k).decode("latin-1"): bytes(v).decode("latin-1")
            for k, v in scope.get("headers", ())}
