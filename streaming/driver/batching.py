"""Opportunistic batching without a task of its own.

A producer that yields faster than the server takes messages pays a ``send()``
per tiny chunk. With ``batch=True`` the pump (``Driver._pump_batched``) holds
the chunks a fast producer has ready and sends them as one message, and it
learns "ready" from the producer itself: ``Next`` runs one ``__anext__`` step
by step, so it knows whether the producer answered at once or had to wait.

The rule that no chunk waits for a later one needs the held chunks sent the
moment the producer starts to wait, which one task cannot do (it is the one
waiting). So the pump guesses from the last steps: after a wait, or during a
short run of quick answers, it sends each chunk at once (no batching, no
cost); only after ``BURST`` quick answers in a row does it hold chunks, and
if the producer then has to wait, ``Next`` calls ``on_wait`` before the wait
begins, which hands the held chunks to a short task that sends them while
the producer waits. That task exists only at the end of a burst of chunks
that piled up; an idle stream (each event followed by a wait) never makes
one.

Stepping a coroutine by hand is what ``await`` does inside: every value the
producer's step yields (a trio trap, an asyncio future) is passed up to the
event loop as it is, and every reply or exception passed back down, so the
producer waits exactly as it would under a plain ``await``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator
from typing import Any

__all__ = ["BURST", "HIGH_WATER", "Next"]

#: Bytes held before they are sent whatever the producer does next.
HIGH_WATER = 64 * 1024

#: Quick answers in a row before chunks are held: a shorter burst is sent
#: chunk by chunk, so a task is made at most once per BURST + 1 chunks.
BURST = 8


class Next:
    """Awaitable: the producer's next item (``StopAsyncIteration`` at its end).

    ``waited`` tells, after the await, whether the producer had to wait for
    something; ``on_wait`` (if set) is called once, just before that wait.
    """

    __slots__ = ("_source", "on_wait", "waited")

    def __init__(self, source: AsyncIterator[Any]) -> None:
        self._source = source
        self.on_wait: Callable[[], None] | None = None
        self.waited = False

    def __await__(self) -> Generator[Any, Any, Any]:
        step = self._source.__anext__().__await__()
        try:
            signal = step.send(None)
        except StopIteration as done:  # the item was ready: no wait
            self.waited = False
            return done.value
        self.waited = True
        if self.on_wait is not None:
            self.on_wait()
        while True:  # pass the wait through, as ``await`` would
            try:
                reply = yield signal
            except BaseException as exc:  # a cancellation thrown in by the loop
                try:
                    signal = step.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    signal = step.send(reply)
                except StopIteration as done:
                    return done.value
