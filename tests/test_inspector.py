"""The inspector app in-process: behind the user's check, its snapshots and
message flows, its own requests not shown as streams, a strict CSP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount, Route

from streaming import StreamingConfigError, StreamingResponse
from streaming.inspector import Inspector, loopback_only
from streaming.observe import StreamWatch
from streaming.testing import StreamingClient


def build(inspector: Inspector, gate: anyio.Event) -> Any:
    async def slow(request: Request) -> StreamingResponse:
        async def produce() -> AsyncIterator[bytes]:
            yield b"first\n"
            await gate.wait()
            yield b"second\n"
        return StreamingResponse(produce())

    return StreamWatch(Starlette(routes=[Route("/slow/{n}", slow),
                                         Mount("/inspector", inspector)]), inspector)


async def test_the_check_guards_every_page() -> None:
    inspector = Inspector(lambda scope: False)
    client = StreamingClient(build(inspector, anyio.Event()))
    for path in ("/inspector/", "/inspector/app.js", "/inspector/events",
                 "/inspector/streams/1"):
        response = await client.get(path)
        assert response.status_code == 403, path


async def test_an_async_check_and_the_static_files() -> None:
    async def allow(scope: Any) -> bool:
        return scope["headers"] and dict(scope["headers"]).get(b"x-token") == b"let-me-in"

    client = StreamingClient(build(Inspector(allow), anyio.Event()))
    assert (await client.get("/inspector/")).status_code == 403
    page = await client.get("/inspector/", headers={"x-token": "let-me-in"})
    assert page.status_code == 200
    assert b"<title>streaming inspector</title>" in page.body
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    script = await client.get("/inspector/app.js", headers={"x-token": "let-me-in"})
    assert script.headers["content-type"].startswith("text/javascript")
    assert b"innerHTML" not in script.body  # values go in as text only


async def test_snapshots_show_open_streams_and_outcomes() -> None:
    gate = anyio.Event()
    inspector = Inspector(loopback_only, interval=0.01)
    client = StreamingClient(build(inspector, gate))
    with anyio.fail_after(5):
        async with client.stream("GET", "/slow/1") as stream:
            await stream.next_chunk()
            snapshot = inspector.snapshot({})
            row, = snapshot["open"]
            assert (row["route"], row["state"], row["bytes"], row["chunks"]) == (
                "/slow/{n}", "streaming", 6, 1)
            assert row["client"] == "127.0.0.1:50000"
            # The inspector's own event stream is not one of the streams it shows.
            async with client.stream("GET", "/inspector/events") as events:
                first = await events.next_chunk()
                assert first is not None and first.startswith(b"event: snapshot\n")
                shown = json.loads(first.split(b"data: ", 1)[1].split(b"\n")[0])
                assert [s["route"] for s in shown["open"]] == ["/slow/{n}"]
            gate.set()
            await stream.read()
    snapshot = inspector.snapshot({})
    assert snapshot["open"] == [] and snapshot["outcomes"] == {"completed": 1}
    assert sum(snapshot["ttfb"]["counts"]) == 1
    assert snapshot["recent"][0]["bytes"] == 13


async def test_idle_and_waiting_states() -> None:
    gate = anyio.Event()
    inspector = Inspector(loopback_only)
    client = StreamingClient(build(inspector, gate))
    previous: dict[int, tuple[float, int]] = {}
    with anyio.fail_after(5):
        async with client.stream("GET", "/slow/1") as stream:
            await stream.next_chunk()
            assert inspector.snapshot(previous)["open"][0]["state"] == "streaming"
            assert inspector.snapshot(previous)["open"][0]["state"] == "idle"  # no progress
            gate.set()
            await stream.read()


async def test_a_stream_s_message_flow() -> None:
    gate = anyio.Event()
    gate.set()
    inspector = Inspector(loopback_only)
    client = StreamingClient(build(inspector, gate))
    await client.get("/slow/2")
    stream_id = inspector.snapshot({})["recent"][0]["id"]
    response = await client.get(f"/inspector/streams/{stream_id}")
    flow = json.loads(response.body)
    kinds = [(m[1], m[2]) for m in flow["messages"]]
    assert ("send", "http.response.start") in kinds
    sent = [m for m in flow["messages"] if m[1] == "send"]
    assert sent[-1][2] == "http.response.body" and sent[-1][4] is False  # the terminator
    assert ("receive", "http.request") in kinds  # the server side too
    assert flow["outcome"] == "completed"
    assert (await client.get("/inspector/streams/999")).status_code == 404


def test_the_inspector_needs_a_check() -> None:
    with pytest.raises(StreamingConfigError):
        Inspector(None)  # type: ignore[arg-type]
