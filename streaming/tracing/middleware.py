"""A middleware that records each request's ASGI messages as they happen."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import anyio

from streaming._types import ASGIApp, Message, Receive, Scope, Send

Direction = Literal["receive", "send"]


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    """One ASGI message: seconds since the request began, which way it went
    (``receive``: server to app; ``send``: app to server), and the message."""

    time: float
    direction: Direction
    message: Message


@dataclass(slots=True)
class Trace:
    """Everything recorded for one request."""

    scope: Scope
    started: float
    messages: list[RecordedMessage] = field(default_factory=list)
    #: The exception the app raised, if it raised one.
    exception: BaseException | None = None

    def record(self, direction: Direction, message: Message) -> None:
        # Copy the dict: apps and servers may reuse message objects.
        self.messages.append(
            RecordedMessage(anyio.current_time() - self.started, direction, dict(message))
        )


TraceSink = Callable[[Trace], Awaitable[None] | None]


class TraceMiddleware:
    """Record the receive/send flow of every HTTP request of ``app``.

    ``on_trace`` is called with the finished ``Trace`` (sync or async), after
    the app returned or raised; exceptions from the app still propagate.
    ``on_start``, if given, gets the same ``Trace`` as soon as the request
    begins, for watching it fill up live.
    """

    def __init__(
        self,
        app: ASGIApp,
        on_trace: TraceSink,
        on_start: Callable[[Trace], None] | None = None,
    ) -> None:
        self.app = app
        self.on_trace = on_trace
        self.on_start = on_start

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace = Trace(scope, anyio.current_time())
        if self.on_start is not None:
            self.on_start(trace)

        async def traced_receive() -> Message:
            message = await receive()
            trace.record("receive", message)
            return message

        async def traced_send(message: Message) -> None:
            trace.record("send", message)
            await send(message)

        try:
            await self.app(scope, traced_receive, traced_send)
        except Exception as exc:
            trace.exception = exc
            raise
        finally:
            result = self.on_trace(trace)
            if inspect.isawaitable(result):
                await result
