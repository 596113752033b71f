"""Offers: a body message sent from the publisher's task, not the stream's.

A fan-out publisher that wakes one task per subscriber pays a task switch per
delivery, most of a delivery's cost when the message is small. A hand-written
loop instead calls every connection's ``send()`` in one pass. An offer does
the same through the driver: ``Driver.offer(body)`` sends ``body`` at once from
the caller's task, counted as the stream's own chunk, if the stream is waiting
for its producer and nothing else is being sent on it.

``send()`` may have to wait (the client's buffer is full). The caller must not:
``begin`` runs the send up to its first wait and stops there; what is left is
a ``Finish``, which the producer awaits in the stream's own task before its
next item. ``Finish`` passes that first wait up to the event loop as it is (an
asyncio future: the stream's task is woken when it is done), then every later
one, as ``await`` would. That a coroutine begun in one task may be finished in
another holds on asyncio, where a wait is a future and does not name its task;
on trio a wait names the task that made it, so the driver takes offers only on
asyncio (``accepts_offers``).

Every step of an offered send runs in a copy of the stream task's context
(``contextvars``), so a send-wrapping middleware sees the request's context
variables, and resets what it set where it set it. What an offer cannot give
a send is its stream's *task*: a wrapper that enters an anyio cancel scope or
takes an anyio lock around ``send()``, or uses ``asyncio.timeout``, ties that
to the publisher's task. So offers are asked for, not assumed: the hub makes
them only with ``Hub(inline_sends=True)``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator
from types import CoroutineType
from typing import Any, cast

from streaming.driver.loop import asyncio_loop

__all__ = ["Finish", "Offer", "accepts_offers", "begin"]

#: ``offer(body)``: ``True`` sent, ``False`` not taken (queue it), or a
#: ``Finish`` the producer must await before its next item.
Offer = Callable[[bytes], "bool | Finish"]


def accepts_offers() -> bool:
    """Whether the running event loop lets a send begun in one task end in
    another: asyncio's does (see the module docstring)."""
    return asyncio_loop() is not None


def begin(send: Callable[[Any], Awaitable[None]], message: Any
          ) -> tuple[Iterator[Any] | Coroutine[Any, Any, None], Any] | None:
    """Run ``send(message)`` up to its first wait: the rest, and what it waits
    on; ``None`` if it finished without waiting. Raises what ``send`` raised.
    (A coroutine is stepped as it is: its ``__await__`` wrapper would cost a
    fifth of a delivery.)"""
    awaitable = send(message)
    try:
        if type(awaitable) is CoroutineType:
            return awaitable, awaitable.send(None)
        rest = awaitable.__await__()
        return rest, next(rest)
    except StopIteration:
        return None


class Finish:
    """Awaitable: the rest of an offered send that had to wait. ``settle``
    is told how it ended (``None``: sent); it returns ``True`` for an error it
    has handled (the client left), which is then not raised."""

    __slots__ = ("_context", "_error", "_rest", "_settle", "_waits_on")

    def __init__(self, rest: Iterator[Any] | Coroutine[Any, Any, None] | None, waits_on: Any,
                 settle: Callable[[BaseException | None], bool],
                 error: Exception | None = None,
                 context: contextvars.Context | None = None) -> None:
        self._rest, self._waits_on, self._settle, self._error = rest, waits_on, settle, error
        #: Where ``begin`` ran the first step: every later step runs there too,
        #: so a wrapper that sets a context variable around ``send()`` resets
        #: it in the context it set it in.
        self._context = context

    def __await__(self) -> Generator[Any, Any, None]:
        try:
            if self._error is not None:
                raise self._error
            rest, signal, context = self._rest, self._waits_on, self._context
            assert rest is not None and context is not None  # both given but with an error
            run = context.run
            send = getattr(rest, "send", None)  # a coroutine, or a generator's iterator
            while True:
                try:
                    reply = yield signal
                except BaseException as exc:  # a cancellation thrown in by the loop
                    signal = run(_throw, rest, exc)
                else:
                    signal = (run(next, cast(Iterator[Any], rest)) if send is None
                              else run(send, reply))
        except StopIteration:
            self._settle(None)
        except BaseException as exc:
            if not self._settle(exc):
                raise

    def close(self) -> None:
        """Abandon it (the stream ended before the producer awaited it)."""
        rest, self._rest = self._rest, None
        close = getattr(rest, "close", None)
        if close is not None:
            close()


def _throw(rest: Iterator[Any] | Coroutine[Any, Any, None], error: BaseException) -> Any:
    throw = getattr(rest, "throw", None)
    if throw is None:
        raise error
    return throw(error)
