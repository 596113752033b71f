"""Opportunistic batching: send everything the producer has ready as one message.

A producer that yields faster than the server takes messages pays a ``send()``
per tiny chunk. With batching, the producer runs in its own task and appends
encoded chunks to a list; the sending task takes the whole list whenever it is
free and sends it as one ``http.response.body``. No chunk waits for a later one:
the moment the producer awaits anything, the sender runs and sends what is
there. The list is bounded (``high_water`` bytes): past it the producer waits
for the sender, so memory stays bounded and a producer that never awaits still
lets other tasks (the disconnect listener among them) run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio

#: Bytes buffered before the producer waits for the sender.
HIGH_WATER = 64 * 1024

Encode = Callable[[Any], bytes | memoryview]

_EXHAUSTED = object()


class Batcher:
    """The hand-off between the producing task and the sending task."""

    __slots__ = ("_encode", "_encode_first", "_high_water", "_producer_waiting",
                 "_sender_waiting", "_size", "chunks", "error", "exhausted", "late_chunk",
                 "stopped")

    def __init__(self, encode_first: Encode, encode: Encode, high_water: int = HIGH_WATER) -> None:
        self._encode_first, self._encode = encode_first, encode
        self._high_water = high_water
        self.chunks: list[bytes | memoryview] = []  # one list for the life of the stream
        self._size = 0
        self.error: Exception | None = None
        self.exhausted = False
        self.stopped = False  # set by the driver when the stream is stopped
        self.late_chunk = False  # an item arrived after the stream was stopped
        self._sender_waiting: anyio.Event | None = None
        self._producer_waiting: anyio.Event | None = None

    async def produce(self, source: AsyncIterator[Any]) -> None:
        """Run the producer to the end (child task)."""
        try:
            first = await anext(source, _EXHAUSTED)
            if first is not _EXHAUSTED and not self._late():
                await self._add(self._encode_first(first))
                await self._produce_rest(source)
        except Exception as exc:  # handed to the sender, which fails the stream
            self.error = exc
        finally:
            self.exhausted = True
            self._wake_sender()

    async def _produce_rest(self, source: AsyncIterator[Any]) -> None:
        # The per-item path, inlined: an await of a helper coroutine per item
        # would cost more than the append.
        encode, chunks, high_water = self._encode, self.chunks, self._high_water
        async for item in source:
            if self.stopped:
                self.late_chunk = True
                return
            body = item if type(item) is bytes else encode(item)
            chunks.append(body)
            self._size += len(body)
            if self._sender_waiting is not None:
                self._wake_sender()
            if self._size >= high_water:
                await self._wait_for_room()

    def _late(self) -> bool:
        self.late_chunk = self.stopped
        return self.stopped

    async def _add(self, body: bytes | memoryview) -> None:
        self.chunks.append(body)
        self._size += len(body)
        self._wake_sender()
        if self._size >= self._high_water:
            await self._wait_for_room()

    async def _wait_for_room(self) -> None:
        self._producer_waiting = anyio.Event()
        await self._producer_waiting.wait()

    def _wake_sender(self) -> None:
        if self._sender_waiting is not None:
            self._sender_waiting.set()
            self._sender_waiting = None

    async def take(self) -> list[bytes | memoryview] | None:
        """Wait for chunks and return all of them; ``None`` at the end."""
        while not self.chunks:
            if self.exhausted:
                return None
            self._sender_waiting = anyio.Event()
            await self._sender_waiting.wait()
        batch = self.chunks[:]  # copy and clear: the producer keeps its list
        self.chunks.clear()
        self._size = 0
        if self._producer_waiting is not None:
            self._producer_waiting.set()
            self._producer_waiting = None
        return batch
