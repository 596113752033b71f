"""The tracing middleware, the timeline format and ``python -m streaming trace``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator

import anyio
import pytest

from streaming import StreamingResponse
from streaming._types import Receive, Scope, Send
from streaming.testing import StreamingClient
from streaming.tracing import Trace, TraceMiddleware, format_message, format_timeline
from tests.servers import ROOT


async def two_chunks() -> AsyncIterator[str]:
    yield "hello "
    yield "world"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    response = StreamingResponse(two_chunks(), media_type="text/plain")
    await response(scope, receive, send)


async def test_middleware_records_both_directions_in_order() -> None:
    traces: list[Trace] = []
    with anyio.fail_after(2):
        await StreamingClient(TraceMiddleware(app, traces.append)).get("/")
    (trace,) = traces
    sent = [m.message["type"] for m in trace.messages if m.direction == "send"]
    received = [m.message["type"] for m in trace.messages if m.direction == "receive"]
    assert sent == ["http.response.start"] + ["http.response.body"] * 3
    # The listener's first receive() may come after the first chunk: the
    # producer here never awaits, so the body is pumped before it runs.
    assert received[0] == "http.request"
    times = [m.time for m in trace.messages]
    assert times == sorted(times)


async def test_middleware_keeps_the_app_exception_and_lets_it_propagate() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise KeyError("broken")

    traces: list[Trace] = []

    async def keep(trace: Trace) -> None:
        traces.append(trace)

    with anyio.fail_after(2), pytest.raises(KeyError):
        await StreamingClient(TraceMiddleware(broken, keep)).get("/")
    assert isinstance(traces[0].exception, KeyError)


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]},
         "http.response.start status=200 headers=[x-a: 1]"),
        ({"type": "http.response.body", "body": b"abc", "more_body": True},
         "http.response.body 3 B more_body=True 'abc'"),
        ({"type": "http.response.body", "body": b"", "more_body": False}, "http.response.body 0 B"),
        ({"type": "http.response.body", "body": b"x" * 50},
         f"http.response.body 50 B {'x' * 5!r}..."),
        ({"type": "http.disconnect"}, "http.disconnect"),
    ],
)
def test_format_message(message: dict[str, object], text: str) -> None:
    assert format_message(message, preview=5 if len(text) > 60 or "..." in text else 40) == text


def test_trace_command_prints_the_timeline() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streaming", "trace", "tests.test_tracing:app", "/"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )
    lines = result.stdout.splitlines()
    assert any("server -> app  http.request 0 B" in line for line in lines)
    sends = [line for line in lines if "app -> server" in line]
    assert "http.response.start status=200" in sends[0]
    assert "'hello '" in sends[1] and "'world'" in sends[2]
    assert sends[3].endswith("http.response.body 0 B")


def test_trace_command_reports_a_bad_app_spec() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streaming", "trace", "no_colon_here", "/"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0 and "MODULE:APP" in result.stderr


def test_format_timeline_has_a_header_line() -> None:
    assert format_timeline([]).split()[:3] == ["ms", "direction", "message"]
