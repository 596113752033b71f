"""The request body, handed to a producer while its response streams.

The driver's listener is the one caller of ``receive()`` (it must be, to see
``http.disconnect`` at once). Without a ``RequestStream`` it drops request body
messages; with one, it forwards them here, and the producer reads them through
``RequestStream.receive``, an ASGI ``receive`` of its own. So a producer can
read the request as it arrives and answer each piece in the same response
(HTTP/1.1 allows it: RFC 9112 9.3 has the client read a response before it
has sent its whole request), and the bounded reader
(``RequestBody(scope, stream.receive, max_size=...)``) applies its limits as usual.

Memory stays bounded: at most ``buffered`` body messages wait here; while the
buffer is full the listener waits for the producer (so the server stops
reading the socket and TCP flow control slows the client), still firing the
driver's timers.
"""

from __future__ import annotations

from collections import deque

import anyio

from streaming._types import Message
from streaming.exceptions import StreamingConfigError


class RequestStream:
    """Request body messages, from the driver's listener to the producer.

    A bounded queue of its own rather than a memory object stream: a send
    cancelled by one of the driver's timers must be known not to have
    delivered its message (so it can be tried again without sending a piece
    of the body twice), and here a message is delivered only by ``append``.
    """

    __slots__ = ("_buffered", "_changed", "_closed", "_items")

    def __init__(self, buffered: int = 4) -> None:
        if type(buffered) is not int or buffered < 1:
            raise StreamingConfigError(f"buffered must be an int >= 1, not {buffered!r}")
        self._buffered = buffered
        self._items: deque[Message] = deque()
        self._closed = False
        # One event for both sides: the queue cannot be empty (the producer
        # waits) and full (the listener waits) at once.
        self._changed: anyio.Event | None = None

    async def receive(self) -> Message:
        """The next ``http.request`` message, or ``http.disconnect`` once the
        client has left (or the response has ended): an ASGI ``receive``."""
        while not self._items:
            if self._closed:
                return {"type": "http.disconnect"}
            await self._wait()
        message = self._items.popleft()
        self._notify()
        return message

    async def forward(self, message: Message) -> None:
        """Driver side: hand one body message over, waiting while the queue is
        full. Cancelled while waiting, it has delivered nothing."""
        while len(self._items) >= self._buffered and not self._closed:
            await self._wait()
        if not self._closed:
            self._items.append(message)
            self._notify()

    def close(self) -> None:
        """Driver side: no more messages (the client left, the response ended);
        once the queue is empty, ``receive()`` returns ``http.disconnect``."""
        self._closed = True
        self._notify()

    async def _wait(self) -> None:
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None
