"""Opportunistic batching without a task of its own.

A producer that yields faster than the server takes messages pays a ``send()``
per tiny chunk. With ``batch=True`` the pump (``Driver._pump_batched``) holds
the chunks a fast producer has ready and sends them as one message. It learns
"ready" from the producer itself: the loop that collects the chunks is a
coroutine run under ``Watched``, which sees every wait on its way to the event
loop (a wait there can only be the producer's), so the pump knows the moment
the producer stops answering at once.

The rule that no chunk waits for a later one needs the held chunks sent the
moment the producer starts to wait, which one task cannot do (it is the one
waiting). So the pump guesses from the last answers: after a wait, and during
a short run of quick answers, it sends each chunk at once (no batching, no
cost); only after ``BURST`` quick answers in a row does it hold chunks, and
if the producer then has to wait, the held chunks go to a short task that
sends them while it waits. That task exists only at the end of a burst of
chunks that piled up; an idle stream (each event followed by a wait) never
makes one.

``Watched`` passes a wait through as ``await`` does inside: every value the
coroutine yields (a trio trap, an asyncio future) goes up to the loop as it
is, and every reply or exception comes back down, so the producer waits
exactly as it would under a plain ``await``. The producer itself is iterated
by ``async for``: the per-chunk cost is the same as without ``Watched``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

_T = TypeVar("_T")

__all__ = ["BURST", "HIGH_WATER", "MAX_CHUNKS", "Batch", "Watched"]

#: Bytes held before they are sent whatever the producer does next.
HIGH_WATER = 64 * 1024

#: Chunks held at most, whatever their size (empty ones add no bytes): a
#: power of two, 64 KiB of 16-byte chunks.
MAX_CHUNKS = 4096

#: Quick answers in a row before chunks are held: a shorter burst is sent
#: chunk by chunk, so a task is made at most once per BURST + 1 chunks.
BURST = 8


class Batch:
    """The chunks held (encoded), how many quick answers the producer gave in
    a row (``quick``), and whether it waited since the collector last looked
    (``waited``: what it held was taken then)."""

    __slots__ = ("chunks", "quick", "waited")

    def __init__(self) -> None:
        self.chunks: list[bytes | memoryview] = []  # one list: the collector keeps it
        self.quick = 0
        self.waited = False

    def take(self) -> list[bytes | memoryview]:
        taken = self.chunks[:]
        self.chunks.clear()
        return taken


class Watched:
    """Awaitable: run ``coroutine`` and return its result, calling ``on_wait``
    each time it is about to wait (before the wait is handed to the loop)."""

    __slots__ = ("_coroutine", "_on_wait")

    def __init__(self, coroutine: Coroutine[Any, Any, _T], on_wait: Callable[[], None]) -> None:
        self._coroutine, self._on_wait = coroutine, on_wait

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, on_wait = self._coroutine, self._on_wait
        try:
            signal = coroutine.send(None)
        except StopIteration as done:  # finished without waiting
            return done.value
        while True:
            on_wait()
            try:
                reply = yield signal
            except BaseException as exc:  # a cancellation thrown in by the loop
                try:
                    signal = coroutine.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    signal = coroutine.send(reply)
                except StopIteration as done:
                    return done.value
