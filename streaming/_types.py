"""The vocabulary shared by every layer: the ASGI spec's names, and the callables
a response is given."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from streaming.outcome import Outcome

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Raw response headers as ASGI carries them: lower-case latin-1 names, latin-1 values.
RawHeaders = list[tuple[bytes, bytes]]

#: Called with the ``Outcome`` when a response has ended (may be a coroutine function).
OutcomeCallback = Callable[[Outcome], Awaitable[None] | None]
#: Run after a completed stream (Starlette's ``background``).
BackgroundTask = Callable[[], Awaitable[Any]]
