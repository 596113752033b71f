"""A stream for a reader that never reads: 64 KiB chunks until the send timeout."""

from __future__ import annotations

from collections.abc import AsyncIterator

from streaming import StreamingResponse
from streaming._types import Receive, Scope, Send


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 65536

    await StreamingResponse(endless(), send_timeout=1)(scope, receive, send)
