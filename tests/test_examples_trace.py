"""The message tracer on scenario 1: every endpoint's ASGI flow, on both layers,
and the ``python -m streaming trace`` command the README shows."""

from __future__ import annotations

import pytest

from examples.app import build_demo_app
from examples.scenario1 import LAYERS
from streaming.cli import main
from streaming.testing import StreamingClient
from streaming.tracing import format_timeline

PATHS = {"/simple": 10, "/parameterized/3?delay=0": 3, "/json/3": 3, "/cleanup": 6,
         "/disconnect": 100, "/sync": 5, "/async": 5, "/async-blocking": 5, "/headers": 5,
         "/background": 5}


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize(("path", "chunks"), PATHS.items(), ids=list(PATHS))
async def test_each_endpoint_flow(layer: str, path: str, chunks: int) -> None:
    response = await StreamingClient(build_demo_app(scale=0)).get(f"/{layer}{path}")
    sends = [(m.message["type"], m.message.get("more_body", False))
             for m in response.messages if m.direction == "send"]
    receives = [m.message["type"] for m in response.messages if m.direction == "receive"]
    # The start, one body message per yielded line, then the empty one that
    # ends the body.
    assert sends == [("http.response.start", False), *[("http.response.body", True)] * chunks,
                     ("http.response.body", False)]
    # The disconnect listener reads the request message (when it first runs
    # depends on scheduling) and may then get the http.disconnect a server
    # reports once the response is complete: harmless, and not always in time.
    assert receives in (["http.request"], ["http.request", "http.disconnect"])
    timeline = format_timeline(response.messages)
    assert "http.response.start status=200" in timeline
    assert timeline.count("more_body=True") == chunks


def test_the_trace_command_on_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    # The README's command, at the tutorial's full delays (three lines, 0.3 s apart).
    assert main(["trace", "examples.app:app", "/json/3"]) == 0
    printed = capsys.readouterr().out
    assert "app -> server  http.response.start status=200" in printed
    assert "content-type: application/x-ndjson" in printed
    assert printed.count("http.response.body") == 4
    assert "http.response.body 0 B\n" in printed
