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


class Batcher:
    """The hand-off between the producing task and the sending task."""

    def __init__(
        self,
        encode_first: Callable[[Any], bytes | memoryview],
        encode: Callable[[Any], bytes | memoryview],
        stopped: Callable[[], bool],
        high_water: int = HIGH_WATER,
    ) -> None:
        self._encode_first, self._encode = encode_first, encode
        self._stopped = stopped
        self._high_water = high_water
        self.chunks: list[bytes | memoryview] = []
        self._size = 0
        self.produced = 0  # items encoded so far: the index of a bad chunk
        self.error: Exception | None = None
        self.exhausted = False
        self.late_chunk = False  # an item arrived after the stream was stopped
        self._sender_waiting: anyio.Event | None = None
        self._producer_waiting: anyio.Event | None = None

    async def produce(self, source: AsyncIterator[Any]) -> None:
        """Run the producer to the end (child task)."""
        try:
            async for item in source:
                if self._stopped():
                    self.late_chunk = True
                    return
                await self._add(item)
        except Exception as exc:  # handed to the sender, which fails the stream
            self.error = exc
        finally:
            self.exhausted = True
            self._wake_sender()

    async def _add(self, item: Any) -> None:
        body = (self._encode if self.produced else self._encode_first)(item)
        self.chunks.append(body)
        self.produced += 1
        self._size += len(body)
        self._wake_sender()
        if self._size >= self._high_water:
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
        batch, self.chunks, self._size = self.chunks, [], 0
        if self._producer_waiting is not None:
            self._producer_waiting.set()
            self._producer_waiting = None
        return batch
