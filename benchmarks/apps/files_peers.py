"""The file servers ``python -m benchmarks.files`` compares, one directory each.

``ours`` and ``starlette`` are ASGI apps (``create_ours()``, ``create_starlette()``
factories, directory from ``STREAMING_FILES_DIR``) run on uvicorn and on
anycorn; ``python -m benchmarks.apps.files_peers --port N DIR`` serves the same
directory with aiohttp's ``web.FileResponse`` (``sendfile``) on aiohttp's own
server, uvloop, no access log.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from streaming import FileResponse
from streaming._types import ASGIApp, Receive, Scope, Send


def _root() -> Path:
    return Path(os.environ["STREAMING_FILES_DIR"])


def _lifespan_or_none(scope: Scope) -> bool:
    kind: str = scope["type"]
    return kind == "lifespan"


async def _lifespan(receive: Receive, send: Send) -> None:
    while (message := await receive())["type"] != "lifespan.shutdown":
        await send({"type": message["type"] + ".complete"})
    await send({"type": "lifespan.shutdown.complete"})


def create_ours() -> ASGIApp:
    root = _root()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if _lifespan_or_none(scope):
            return await _lifespan(receive, send)
        await FileResponse(root / scope["path"].lstrip("/"))(scope, receive, send)
    return app


def create_starlette() -> ASGIApp:
    from starlette.responses import FileResponse as StarletteFileResponse

    root = _root()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if _lifespan_or_none(scope):
            return await _lifespan(receive, send)
        await StarletteFileResponse(root / scope["path"].lstrip("/"))(scope, receive, send)
    return app


def main() -> None:
    import asyncio

    import uvloop
    from aiohttp import web

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("root", type=Path)
    args = parser.parse_args()

    async def serve(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(args.root / request.match_info["name"])

    app = web.Application()
    app.router.add_get("/{name}", serve)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
