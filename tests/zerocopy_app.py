"""The app the zero-copy tests serve: ``FileResponse`` behind a ``send`` that
counts the ASGI message types it passes on, so a test can see which path
(``http.response.zerocopysend``, ``pathsend`` or body chunks) a server got.

``python -m anycorn 'tests.zerocopy_app:create_app()'`` or
``granian --interface asgi --factory tests.zerocopy_app:create_app``, with
``STREAMING_FILES_DIR`` naming the directory. ``GET /stats`` returns the counts
so far; ``GET /NAME`` serves a file of the directory.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from streaming import FileResponse
from streaming._types import ASGIApp, Message, Receive, Scope, Send


def create_app() -> ASGIApp:
    root = Path(os.environ["STREAMING_FILES_DIR"])
    counts: Counter[str] = Counter()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        name = scope["path"].lstrip("/")
        if name == "stats":
            body = json.dumps(counts).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return

        async def counting(message: Message) -> None:
            counts[message["type"]] += 1
            await send(message)
        await FileResponse(root / name)(scope, receive, counting)

    return app
