"""The example ticker in-process: one clock-driven publisher, a ``ReplayBuffer``,
and subscribers that resume from ``Last-Event-ID`` (WHATWG HTML 9.2.4), get a
``reset`` event when their id is too old, and can be dropped by the admin
handle. The real-server and browser versions are in ``test_sse_clients.py``."""

from __future__ import annotations

import json

import anyio
from starlette.applications import Starlette

from examples.app import build_demo_app
from examples.sse_events import SSEDemo
from streaming import RESET_EVENT, ServerSentEvent
from streaming.testing import StreamingClient

#: Ticks 5 ms apart (the demo's 0.5 s x 0.01).
SCALE = 0.01


def ids(events: list[ServerSentEvent]) -> list[tuple[str | None, str | None]]:
    return [(e.event, e.id) for e in events]


def ticks(first: int, last: int) -> list[tuple[str | None, str | None]]:
    return [("tick", str(n)) for n in range(first, last + 1)]


def demo_app(*, ticks: int = 20, history: int = 100) -> tuple[SSEDemo, Starlette]:
    demo = SSEDemo(scale=SCALE, retry=100, ticks=ticks, history=history)
    return demo, build_demo_app(scale=SCALE, sse=demo)


async def test_a_fresh_client_gets_every_tick_then_complete() -> None:
    demo, app = demo_app(ticks=5)
    with anyio.fail_after(5):
        response = await StreamingClient(app).get("/sse/ours/ticker/a")
    events = response.events()
    assert ids(events) == [*ticks(1, 5), ("complete", "6")]
    assert events[0].retry == 100  # the reconnection time rides on the first event
    assert response.complete  # ``complete`` ends the response cleanly
    assert [c.last_event_id for c in demo.tickers.channel("a").connections] == [None]


async def test_a_client_resumes_after_its_last_event_id() -> None:
    demo, app = demo_app(ticks=6)
    client = StreamingClient(app)
    with anyio.fail_after(5):
        await client.get("/sse/ours/ticker/b")  # runs the ticker to its end
        response = await client.get("/sse/ours/ticker/b", headers={"Last-Event-ID": "3"})
    assert ids(response.events()) == [*ticks(4, 6), ("complete", "7")]
    assert [c.last_event_id for c in demo.tickers.channel("b").connections] == [None, "3"]


async def test_an_id_too_old_for_the_buffer_gets_a_reset_then_what_is_held() -> None:
    _, app = demo_app(ticks=8, history=3)  # holds the last three events only
    client = StreamingClient(app)
    with anyio.fail_after(5):
        await client.get("/sse/ours/ticker/c")
        response = await client.get("/sse/ours/ticker/c", headers={"Last-Event-ID": "2"})
    events = response.events()
    assert events[0].event == RESET_EVENT
    assert json.loads(events[0].data) == {"last_event_id": "2", "resume_from": "7"}
    assert ids(events[1:]) == [*ticks(7, 8), ("complete", "9")]


async def test_the_admin_handle_ends_open_streams_cleanly_after_n_events() -> None:
    demo, app = demo_app(ticks=6)
    channel = demo.tickers.channel("d")
    channel.drop_after(2)
    client = StreamingClient(app)
    with anyio.fail_after(5):
        first = await client.get("/sse/ours/ticker/d")
    assert ids(first.events()) == ticks(1, 2)
    assert first.complete  # a clean end of response: an EventSource reconnects
    assert len(channel.dropped_at) == 1
    with anyio.fail_after(5):
        rest = await client.get("/sse/ours/ticker/d", headers={"Last-Event-ID": "2"})
    assert ids(rest.events()) == [*ticks(3, 6), ("complete", "7")]


async def test_a_bad_channel_name_is_refused() -> None:
    _, app = demo_app()
    with anyio.fail_after(5):
        response = await StreamingClient(app).get("/sse/ours/ticker/%3Cscript%3E")
    assert response.status_code == 404
