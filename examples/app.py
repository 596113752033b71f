"""The demo app: scenario 1 on every layer, side by side.

``uvicorn examples.app:app`` serves:

* ``/simple``, ``/json/5``, ... : the tutorial's paths, answered by our raw
  ``streaming.StreamingResponse``;
* ``/raw/...`` and ``/starlette/...``: the same producers through each layer;
* ``/`` (the endpoint list) and ``/page/stream`` (fetch + ReadableStream).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount, Route

from examples.pages import STREAM_PAGE, index_html
from examples.scenario1 import Recorder, build_routes


async def index(request: Request) -> HTMLResponse:
    return HTMLResponse(index_html())


async def stream_page(request: Request) -> HTMLResponse:
    return HTMLResponse(STREAM_PAGE)


def sse_routes() -> list[BaseRoute]:
    """SSE VARIANTS GO HERE. The Server-Sent Events issue mounts its variants
    (ours and sse-starlette's) under ``/sse/...`` by returning their routes
    from this function; until then there are none."""
    return []


def build_demo_app(*, scale: float = 1.0, recorder: Recorder | None = None) -> Starlette:
    """The demo. ``scale`` multiplies every built-in delay (tests use small ones);
    marks reach ``recorder`` as ``"<layer>:<endpoint>:<branch>"``. The tutorial's
    paths share the ``/raw`` routes, so their marks are ``raw:`` marks too."""
    raw = build_routes("raw", scale=scale, recorder=recorder)
    routes: list[BaseRoute] = [
        Route("/", index),
        Route("/page/stream", stream_page),
        *raw,
        Mount("/raw", routes=raw),
        Mount("/starlette", routes=build_routes("starlette", scale=scale, recorder=recorder)),
    ]
    sse = sse_routes()
    if sse:
        routes.append(Mount("/sse", routes=sse))
    return Starlette(routes=routes)


app = build_demo_app()
