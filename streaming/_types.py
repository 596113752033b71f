"""The ASGI vocabulary shared by every layer (the ASGI spec's names, nothing more)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Raw response headers as ASGI carries them: lower-case latin-1 names, latin-1 values.
RawHeaders = list[tuple[bytes, bytes]]
