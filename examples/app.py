"""The demo app: scenario 1 on every layer, side by side.

``uvicorn examples.app:app`` serves:

* ``/simple``, ``/json/5``, ... : the tutorial's paths, answered by our raw
  ``streaming.StreamingResponse``;
* ``/raw/...`` and ``/starlette/...``: the same producers through each layer;
* ``/sse/...``: Server-Sent Events on our layer, Starlette's and sse-starlette's
  (``examples.sse_events``), and ``/page/events`` (``EventSource``);
* ``/`` (the endpoint list) and ``/page/stream`` (fetch + ReadableStream).

``app`` drains its event streams on SIGTERM/SIGINT: ``drain.lifespan`` chains
a handler in front of uvicorn's, and every stream ends with a ``shutdown``
event before uvicorn waits for the connections to close.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount, Route

from examples.chat import chat_routes
from examples.pages import EVENTS_PAGE, STREAM_PAGE, index_html
from examples.scenario1 import Recorder, build_routes
from examples.sse_events import SSEDemo
from streaming import Drain

#: The demo's drain. Its grace (how long a stream may take to send its last
#: event) stays below uvicorn's --timeout-graceful-shutdown, so the drain is
#: done before uvicorn gives up on the connections.
drain = Drain(grace=3.0)


async def index(request: Request) -> HTMLResponse:
    return HTMLResponse(index_html())


async def stream_page(request: Request) -> HTMLResponse:
    return HTMLResponse(STREAM_PAGE)


async def events_page(request: Request) -> HTMLResponse:
    return HTMLResponse(EVENTS_PAGE)


def sse_routes(demo: SSEDemo) -> list[BaseRoute]:
    """The Server-Sent Events variants (ours, Starlette's, sse-starlette's),
    mounted under ``/sse/...``."""
    return demo.routes()


def build_demo_app(*, scale: float = 1.0, recorder: Recorder | None = None,
                   sse: SSEDemo | None = None, drain: Drain | None = None) -> Starlette:
    """The demo. ``scale`` multiplies every built-in delay (tests use small ones);
    marks reach ``recorder`` as ``"<layer>:<endpoint>:<branch>"``. The tutorial's
    paths share the ``/raw`` routes, so their marks are ``raw:`` marks too.
    ``sse`` is the SSE part (a test keeps it to reach the ticker's admin
    handle); with ``drain``, the app drains its streams on SIGTERM/SIGINT."""
    raw = build_routes("raw", scale=scale, recorder=recorder)
    routes: list[BaseRoute] = [
        Route("/", index),
        Route("/page/stream", stream_page),
        Route("/page/events", events_page),
        *raw,
        Mount("/raw", routes=raw),
        Mount("/starlette", routes=build_routes("starlette", scale=scale, recorder=recorder)),
        *chat_routes(scale=scale),  # /chat, /chat/stream, /proxy/v1, /v1 (examples.chat)
    ]
    demo = sse or SSEDemo(scale=scale, drain=drain)
    routes.append(Mount("/sse", routes=sse_routes(demo)))
    return Starlette(routes=routes, lifespan=drain.lifespan if drain else None)


app = build_demo_app(drain=drain)
