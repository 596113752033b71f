"""The driver: one response, one task group, one place that calls send/receive."""

from __future__ import annotations

import contextvars
import enum
import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from streaming._types import Message, RawHeaders, Receive, Send
from streaming.driver.batching import BURST, HIGH_WATER, MAX_CHUNKS, Batch, Watched
from streaming.driver.closing import Warner, close_after_late_item, ignored_generator_exit
from streaming.driver.loop import Group, loop_calls
from streaming.driver.offers import Finish, Offer, accepts_offers, begin
from streaming.driver.policy import StreamPolicy
from streaming.driver.request import RequestStream
from streaming.driver.sources import ThreadedIterator, close_source, producer_busy
from streaming.driver.watchdog import Action, Stamp, Watchdog
from streaming.exceptions import ContentTypeError, StreamEnded
from streaming.formats import Format, status_for
from streaming.outcome import EndReason, Outcome

__all__ = ["Driver", "Phase", "ServerSend", "StreamPolicy"]

logger = logging.getLogger("streaming")

#: Yield to the event loop once every 1024 chunks (see ``Driver._pump``):
#: about a millisecond of a busy producer, a negligible cost per chunk.
_YIELD_MASK = 1023

#: What an error response falls back to when the format cannot render one.
_PLAIN_500 = b"Internal Server Error"
_PLAIN_500_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"),
                      (b"content-length", b"21")]

#: The last message of a complete body (ASGI: ``more_body`` false).
_END: Message = {"type": "http.response.body", "body": b"", "more_body": False}

_T = TypeVar("_T")

#: What ``anext`` returns here for an exhausted producer.
_EXHAUSTED = object()

#: Why ``Driver._collect`` returned: send what is held and go on; the stream
#: was stopped (an item came late); the producer is exhausted.
_MORE, _LATE, _ENDED = object(), object(), object()


class Phase(enum.IntEnum):
    """Where a response is, in order; each phase allows only some moves (the
    model is h11's state table):

    ========== ============================================ ==========
    phase      event                                        next
    ========== ============================================ ==========
    PENDING    ``send(start)`` begins                       COMMITTING
    COMMITTING it returns                                   STREAMING
    COMMITTING it raises (cancelled, or the client left)    PENDING
    COMMITTING it raises otherwise: the server refused it   PENDING, and
                                                            nothing more
                                                            is ever sent
    PENDING    an error response goes out whole             COMPLETE
    STREAMING  the terminator (``more_body`` false) begins  ENDING
    ENDING     it returns                                   COMPLETE
    ========== ============================================ ==========

    Only PENDING may still turn an error into a status; from ENDING on, a
    drain or a disconnect can no longer stop the stream (a send timeout can).
    """

    PENDING = 0
    COMMITTING = 1
    STREAMING = 2
    ENDING = 3
    COMPLETE = 4


@dataclass(frozen=True, slots=True)
class ServerSend:
    """A body piece the server sends on its own, as an ASGI extension offers:
    ``http.response.zerocopysend`` (a file descriptor, offset and count) or
    ``http.response.pathsend`` (a whole file by path, which ends the body:
    ``ends_body``). A producer yields one instead of bytes; the driver passes
    ``message`` to ``send()`` as it is, counted like any chunk of ``size``
    bytes (``len()`` of it, as of bytes)."""

    message: Message
    size: int
    ends_body: bool = False

    def __len__(self) -> int:
        return self.size


class _StartRefused(Exception):
    """Internal: the server refused the response start earlier; raised to any
    later caller of ``_commit`` so that nothing else is sent."""


def _body(data: bytes | memoryview) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": True}


class Driver:
    """Runs one response: commit, pump, race the listener, close the producer.

    Every ``send()`` but the per-chunk one goes through ``_emit``; the end
    reason is written only by ``_end`` (through ``stop`` from outside); the
    lifecycle is ``phase``.
    """

    # Slots: thousands of idle streams each hold one driver.
    __slots__ = (
        "_attention",
        "_bytes",
        "_checkpoint",
        "_chunks",
        "_commit_due",
        "_context",
        "_deadline",
        "_error",
        "_final",
        "_finishing",
        "_first_at",
        "_fmt",
        "_group",
        "_handing",
        "_head_sent",
        "_listening",
        "_look_due",
        "_now",
        "_offerable",
        "_offers",
        "_open_group",
        "_phase",
        "_pinging",
        "_policy",
        "_reason",
        "_receive",
        "_refused",
        "_request",
        "_scope",
        "_send",
        "_source",
        "_stamp",
        "_start",
        "_started",
        "_watchdog",
        "status",
    )

    def __init__(
        self,
        receive: Receive,
        send: Send,
        fmt: Format,
        status: int,
        headers: RawHeaders,
        policy: StreamPolicy,
        request: RequestStream | None = None,
    ) -> None:
        self._receive = receive
        self._request = request
        self._send = send
        self._fmt = fmt
        self._start: Message = {"type": "http.response.start", "status": status, "headers": headers}
        self._policy = policy
        self._phase = Phase.PENDING
        self._reason: EndReason | None = None  # written by _end only
        self._error: BaseException | None = None
        self._final: bytes | None = None  # a drain's last words
        # Checked once per chunk: someone stopped the stream, or a look wants
        # the start of the next send timed (see driver/watchdog.py).
        self._attention = False
        self._stamp: Stamp | None = None
        self._head_sent: anyio.Event | None = None
        self._commit_due = self._look_due = self._first_at = self._started = math.inf
        self._watchdog: Watchdog | None = None
        self._handing: anyio.Event | None = None  # batch=True: held chunks on their way
        self._scope: Any = None  # the group's cancel scope
        self._source: object = None
        self._chunks = self._bytes = 0
        # The listener runs from the stream's first wait until it hears
        # http.disconnect; _group starts it (once), then is None.
        self._listening = False
        self._group: Group | None = None
        # The server raised from send(start) (not OSError): it holds the response
        # as started, so nothing more may be sent, not even an error status.
        self._refused = False
        # The loop's clock, checkpoint and deadline scope: anyio's, without its
        # backend lookup, and on asyncio a lighter deadline (driver/loop.py).
        self._now, self._checkpoint, self._deadline, self._open_group = loop_calls()
        # Offers (driver/offers.py): asked for, takeable now, the context they
        # run in, and the one that had to wait and is not finished yet.
        self._offers = self._offerable = self._pinging = False
        self._context: contextvars.Context | None = None
        self._finishing: Finish | None = None
        self.status = status

    async def run(self, source: AsyncIterator[Any]) -> Outcome:
        """Stream ``source`` to the client and return how it ended."""
        self._started = started = self._now()
        self._source = source
        self._start_timers(started)
        late = False
        try:
            async with self._open_group() as group:
                self._scope, self._group = group.cancel_scope, group
                if self._request is not None:  # the listener forwards the request body
                    self._listen_now()
                try:  # here, not in a helper: one coroutine frame less per stream
                    if self._reason is None:  # a drain may have stopped it already
                        late = await self._pump(source, group)
                except ContentTypeError as exc:
                    await self._fail(ContentTypeError(exc.chunk, self._chunks))
                except StreamEnded as exc:  # the producer's own reason: a clean end
                    self.stop(exc.reason, exc.final)
                except Exception as exc:
                    await self._fail(exc)
                await self._stop_listening(group.cancel_scope)
        finally:
            timed_out = await self._close(source, late)
        if self._final is not None and self._phase < Phase.COMPLETE:
            await self._send_final(self._final)
        return self._outcome(self._now() - started, timed_out)

    async def run_head(self, source: object) -> Outcome:
        """Answer a HEAD request: headers, an empty body, and the producer closed
        before it ever ran."""
        started = self._now()
        if await self._commit(self._start) and await self._emit(_END):
            self._phase = Phase.COMPLETE
        self._end(EndReason.HEAD)
        timed_out = await self._close(source, late=False)
        return self._outcome(self._now() - started, timed_out)

    def stop(self, reason: EndReason, final: bytes | None = None) -> None:
        """End the stream early from outside the body (a drain, a disconnect, a
        send timeout): cancel the producer, then send ``final`` and the
        terminator if given. The first reason given is the one reported."""
        if self._phase is Phase.COMPLETE:
            return
        if self._phase is Phase.ENDING and reason is not EndReason.SEND_TIMEOUT:
            return  # the terminator is on its way: nothing to stop
        if self._end(reason):
            self._final = final
        self._attention = True
        if self._scope is not None:
            self._scope.cancel()

    def _end(self, reason: EndReason) -> bool:
        """Record why the stream ended: the one writer of the end reason. The
        first reason stays; returns False if one was already recorded."""
        if self._reason is not None:
            return False
        self._reason = reason
        return True

    # -- what observers read while the stream runs (no cost per chunk) --------

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def chunks_sent(self) -> int:
        return self._chunks

    @property
    def bytes_sent(self) -> int:
        return self._bytes

    @property
    def first_byte_at(self) -> float | None:
        return None if self._first_at == math.inf else self._first_at

    @property
    def state(self) -> str:
        """``waiting`` (for the first chunk), ``streaming``, or ``draining``."""
        if self._reason is EndReason.DRAINED:
            return "draining"
        return "waiting" if self._first_at == math.inf else "streaming"

    # -- sending --------------------------------------------------------------

    async def _emit(self, message: Message) -> bool:
        """Send one message (every send but the per-chunk one comes here).
        ``False`` when the client has left: an ASGI 2.4 server's ``OSError``,
        which ends the stream (only ``send()``'s ``OSError`` means that; the
        producer's is a producer error)."""
        try:
            await self._send(message)
        except OSError:
            self._client_gone()
            return False
        return True

    def _client_gone(self) -> None:
        if self._phase is Phase.ENDING:
            self._end(EndReason.CLIENT_DISCONNECTED)  # the terminator never arrived
        else:
            self.stop(EndReason.CLIENT_DISCONNECTED)

    async def _commit(self, start: Message) -> bool:
        """Send the response start exactly once, whoever asks first; ``False``
        if the client has left."""
        if self._phase >= Phase.STREAMING:
            return True
        if self._refused:
            raise _StartRefused
        if self._phase is Phase.COMMITTING:
            if self._head_sent is None:  # made only when someone has to wait
                self._head_sent = anyio.Event()
            await self._head_sent.wait()
            if self._phase >= Phase.STREAMING:
                return True
            if self._refused:
                raise _StartRefused
        self._phase = Phase.COMMITTING
        try:
            sent = await self._emit(start)
        except Exception:
            # Not OSError (_emit takes that): the server refused this start (h11
            # refuses a header value it cannot write). Answering again would be
            # a second start, which the server refuses too.
            self._phase = Phase.PENDING
            self._refused = True
            raise
        except BaseException:
            self._phase = Phase.PENDING  # not sent (cancelled): may be tried again
            raise
        finally:
            if self._head_sent is not None:  # wake waiters either way
                self._head_sent.set()
                self._head_sent = None
        if not sent:
            self._phase = Phase.PENDING
            return False
        self._phase = Phase.STREAMING
        self.status = start["status"]
        return True

    # -- the race -----------------------------------------------------------

    async def _listen(self) -> None:
        """The side task: wait for ``http.disconnect`` and, between messages,
        fire the timers that are due (commit deadline, keep-alive, send
        timeout). One child task per response, as in a hand-written loop.

        Cancelling ``receive()`` at a timer loses nothing: servers hold
        messages until they are received (uvicorn waits on an event), and
        Starlette's ``Request.is_disconnected`` relies on the same. Request body
        messages go to the producer's ``RequestStream`` if the response has
        one (``streaming/driver/request.py``), else they are dropped."""
        receive, deadline = self._receive, self._deadline
        try:
            while True:
                due = self._next_due()
                if due == math.inf:
                    message = await receive()
                else:
                    with deadline(due) as timer:
                        message = await receive()
                    if timer.cancelled_caught:
                        await self._fire_timers()
                        continue
                if message["type"] == "http.disconnect":
                    break
                if self._request is not None and message["type"] == "http.request":
                    await self._forward(self._request, message)
        except OSError:
            pass
        self._listening = False
        # Servers also report a disconnect once the response is complete:
        # stop() ignores it then.
        self.stop(EndReason.CLIENT_DISCONNECTED)
        if self._request is not None:
            # After stop(): the producer is cancelled, not told of a cut body.
            self._request.close()

    async def _forward(self, request: RequestStream, message: Message) -> None:
        # Wait for the producer to take the message (bounded memory), firing
        # the timers that fall due meanwhile. A send cancelled by a timer has
        # not delivered the message, so it is simply tried again.
        while True:
            with self._deadline(self._next_due()) as timer:
                await request.forward(message)
            if not timer.cancelled_caught:
                return
            await self._fire_timers()

    def _listen_now(self) -> None:
        """Start the listener, once: the stream is about to wait (for the
        producer, or in ``send()``), or will stream on. A response sent whole
        without ever waiting needs none: until its first wait no timer can be
        due and nothing but this task runs, so a disconnect could not be heard
        anyway (an ASGI 2.4 server's ``OSError`` from ``send()`` still is)."""
        group, self._group = self._group, None
        if group is not None:
            self._listening = True
            group.start_soon(self._listen)

    def _quick(self, step: Any) -> Any:
        """``step`` (an awaitable with send/throw), starting the listener at
        its first wait, while there is no listener; else ``step`` itself."""
        return step if self._group is None else Watched(step, self._listen_now)

    async def _stop_listening(self, scope: Any) -> None:
        # Once the response is complete, a server answers receive() with
        # http.disconnect (ASGI HTTP spec; uvicorn also wakes a pending one),
        # so the listener usually ends by itself within one turn of the loop:
        # no need to cancel it, which costs more than that turn (anyio's
        # cancel() formats the task's repr and schedules a delivery loop).
        if not self._listening:
            return
        if self._phase is Phase.COMPLETE:
            await self._checkpoint()
        if self._listening:
            scope.cancel()

    def _start_timers(self, now: float) -> None:
        deadline = self._policy.commit_deadline
        self._commit_due = now + deadline if deadline else math.inf
        watchdog = Watchdog(self._policy.ping_interval, self._policy.send_timeout, now)
        if watchdog.active:
            self._watchdog = watchdog
            self._look_due = watchdog.first_look()

    def _next_due(self) -> float:
        if self._phase is Phase.PENDING:
            return min(self._commit_due, self._look_due)
        return self._look_due

    async def _fire_timers(self) -> None:
        now = self._now()
        if self._phase is Phase.PENDING and now >= self._commit_due:
            self._commit_due = math.inf
            try:
                if not await self._commit(self._start):
                    return
            except Exception as exc:
                if not self._refused:
                    raise
                return self._start_refused(exc)
        if now >= self._look_due:
            await self._ping_or_time_out(now)

    async def _ping_or_time_out(self, now: float) -> None:
        """Ask the watchdog: ping an idle stream, or give up on a client that
        has not taken one message within the send timeout."""
        assert self._watchdog is not None  # looks are scheduled only with one
        stamp, self._stamp = self._stamp, None
        # A hand-off (batch=True) sends while the producer waits: the driver is
        # in send() then, whatever the producer does.
        handing = self._handing is not None and not self._handing.is_set()
        # An offered send that had to wait is the driver's too, wherever it runs.
        busy = not handing and self._finishing is None and producer_busy(self._source)
        verdict = self._watchdog.look(now, self._chunks, busy, stamp)
        self._look_due = verdict.next_look
        self._attention = True  # time the next send: the next look needs it
        if verdict.action is Action.PING:
            await self._ping()
        elif verdict.action is Action.TIME_OUT:
            self.stop(EndReason.SEND_TIMEOUT)

    async def _ping(self) -> None:
        keepalive = self._fmt.keepalive()
        if keepalive is None:
            return
        self._pinging = True  # no offer while this send runs (driver/offers.py)
        try:
            await self._send_keepalive(keepalive)
        finally:
            self._pinging = False

    async def _send_keepalive(self, keepalive: bytes) -> None:
        if not self._policy.send_timeout:  # no cancel scope: the cheap path of every ping
            if await self._commit(self._start):
                await self._emit(_body(keepalive))
            return
        with self._deadline(self._now() + self._policy.send_timeout) as scope:
            if await self._commit(self._start):
                await self._emit(_body(keepalive))
        if scope.cancelled_caught:
            self.stop(EndReason.SEND_TIMEOUT)

    def _take_stamp(self, sent: int) -> None:
        self._attention = False
        self._stamp = Stamp(self._now(), sent)

    # -- the body -----------------------------------------------------------

    async def _pump(self, source: AsyncIterator[Any], group: Group) -> bool:
        # The one pump; it returns True when it got an item after the stream
        # was stopped. The first chunk is special (it commits the headers); the
        # loop after it does one encode and one send per chunk, plus a
        # checkpoint every _YIELD_MASK + 1 chunks: a producer that never
        # awaits, sending to a server whose send() does not suspend (uvicorn's,
        # until its buffer fills, and always once the client is gone), would
        # otherwise never let the disconnect listener, or any other connection,
        # run. With batch=True the loop is _pump_batched's.
        encode, send, mask, size = self._fmt.encode, self._send, _YIELD_MASK, len
        if self._policy.commit_deadline == 0:  # Starlette's way: headers first
            self._listen_now()
            if not await self._commit(self._start):
                return False
        first = await self._quick(anext(source, _EXHAUSTED))
        if self._reason is not None:
            return first is not _EXHAUSTED
        if first is _EXHAUSTED:
            if await self._quick(self._commit(self._start)):
                await self._finish_body()
            return False
        body = first if type(first) is ServerSend else self._fmt.encode_first(first)
        if not await self._quick(self._commit(self._start)):
            return False
        self._first_at = now = self._now()
        self._stamp = Stamp(now, 0)
        if not await self._quick(self._send_piece(body)):
            return False
        if self._policy.batch or self._offers:  # streams that go on: listen now
            self._listen_now()
            if self._policy.batch:
                return await self._pump_batched(source, group)
            return await self._pump_offering(source)
        # A second item that comes at once, and is the end, makes a response
        # sent whole without waiting: no listener (TTFB and CPU of short ones).
        second = await self._quick(anext(source, _EXHAUSTED))
        if self._reason is not None:
            return second is not _EXHAUSTED
        if second is _EXHAUSTED:
            await self._quick(self._finish_body())
            return False
        self._listen_now()
        if self._attention:  # a look asks to time this send (see the loop below)
            self._take_stamp(self._chunks)
        if not await self._send_item(second):
            return False
        sent, nbytes = self._chunks, self._bytes
        async for item in source:
            if self._attention:  # stopped, or a look asks to time this send
                if self._reason is not None:
                    return True
                self._take_stamp(sent)
            # Pre-encoded bytes pass through every format untouched; skipping
            # the call for them is the cheapest thing on this path.
            if type(item) is bytes:
                body = item
            elif type(item) is ServerSend:  # a server-side file send: rare, large
                if not await self._send_item(item):
                    return False
                sent, nbytes = self._chunks, self._bytes
                continue
            else:
                body = encode(item)
            try:
                await send({"type": "http.response.body", "body": body, "more_body": True})
            except OSError:  # only send()'s OSError means the client left
                self._client_gone()
                return False
            sent += 1
            nbytes += size(body)
            self._chunks = sent  # read by the watchdog: progress
            self._bytes = nbytes  # and by the inspector
            if not sent & mask:
                await self._checkpoint()
        await self._finish_body()
        return False

    # -- offers: a body message sent from the publisher's task (driver/offers.py)

    def accept_offers(self) -> Offer | None:
        """``offer``, for a producer's publisher to send from its own task;
        ``None`` where offers cannot be taken (trio, ``batch=True``). Called
        before ``run``; the producer awaits any ``Finish`` an offer returns."""
        if self._policy.batch or not accepts_offers():
            return None
        self._offers = True
        return self.offer

    def offer(self, body: bytes) -> bool | Finish:
        """Send ``body`` now, from the caller's task, as the stream's next
        chunk, if the stream waits for its producer with nothing else in
        ``send()``. ``True``: sent (or the client had left); ``False``: not
        taken, the producer yields it as usual; a ``Finish``: ``send()`` had to
        wait, and the producer awaits the rest before its next item. Never
        raises: a server error reaches the producer through the ``Finish``."""
        if not self._offerable or self._finishing is not None or self._pinging:
            return False
        if self._attention:
            if self._reason is not None:
                return False
            self._take_stamp(self._chunks)
        assert self._context is not None  # set with _offerable
        self._offerable = False  # an offer made inside this send waits its turn
        try:
            waiting = self._context.run(begin, self._send, _body(body))
        except OSError:  # only send()'s OSError means the client left
            self._client_gone()
            return True
        except Exception as exc:
            self._finishing = Finish(None, None, self._settle_offer, exc)
            return self._finishing
        finally:
            self._offerable = True
        if waiting is None:
            self._chunks += 1
            self._bytes += len(body)
            return True
        self._take_stamp(self._chunks)  # it waits on the client: the watchdog times it
        size = len(body)
        self._finishing = Finish(*waiting, lambda error: self._settle_offer(error, size),
                                 context=self._context)
        return self._finishing

    def _settle_offer(self, error: BaseException | None, size: int = 0) -> bool:
        """How an offered send that had to wait ended; ``True``: handled."""
        self._finishing = None
        if error is None:
            self._chunks += 1
            self._bytes += size
            return True
        if isinstance(error, OSError):
            self._client_gone()
            return True
        return False

    async def _pump_offering(self, source: AsyncIterator[Any]) -> bool:
        """The loop of ``_pump`` for a producer that takes offers: it counts on
        the driver, not in locals (an offer counts too), and takes offers only
        while it waits for the next item."""
        self._context = contextvars.copy_context()
        mask, count = _YIELD_MASK, 0
        try:
            while True:
                self._offerable = True
                item = await anext(source, _EXHAUSTED)
                self._offerable = False
                if item is _EXHAUSTED:
                    break
                if self._attention:  # stopped, or a look asks to time this send
                    if self._reason is not None:
                        return True
                    self._take_stamp(self._chunks)
                if not await self._send_item(item):
                    return False
                count += 1
                if not count & mask:
                    await self._checkpoint()
        finally:
            self._offerable = False
            if self._finishing is not None:  # the producer never awaited it
                self._finishing.close()
                self._finishing = None
        await self._finish_body()
        return False

    async def _send_item(self, item: Any) -> bool:
        """Encode and send one item outside the per-chunk loop; ``False``: the
        client left, or a pathsend ended the body (nothing may follow)."""
        if type(item) is not bytes and type(item) is not ServerSend:
            item = self._fmt.encode(item)
        return await self._send_piece(item) and self._phase is not Phase.COMPLETE

    async def _send_piece(self, piece: bytes | memoryview | ServerSend) -> bool:
        """Send one body piece outside the per-chunk loop, counted: bytes, or a
        ``ServerSend`` (a pathsend ends the body: no terminator after it)."""
        if not isinstance(piece, ServerSend):
            if not await self._emit(_body(piece)):
                return False
            self._chunks += 1
            self._bytes += len(piece)
            return True
        if piece.ends_body:
            if self._listening:  # as _finish_body: see a disconnect that is already in
                await self._checkpoint()
            self._phase = Phase.ENDING
        if not await self._emit(piece.message):
            return False
        self._chunks += 1
        self._bytes += piece.size
        if piece.ends_body:
            self._phase = Phase.COMPLETE
            self._end(EndReason.COMPLETED)
        return True

    async def _finish_body(self) -> None:
        if self._phase is Phase.COMPLETE:  # a ServerSend ended the body
            return
        # Let a disconnect that already arrived be seen before calling the
        # response complete: a 2.3 server would drop the terminator silently.
        if self._listening:
            await self._checkpoint()
        self._phase = Phase.ENDING
        if await self._emit(_END):
            self._phase = Phase.COMPLETE
            self._end(EndReason.COMPLETED)

    async def _pump_batched(self, source: AsyncIterator[Any],
                            group: Group) -> bool:
        """The loop of ``_pump`` with ``batch=True`` (``driver/batching.py``):
        ``_collect`` holds chunks while the producer answers at once; they are
        sent when it returns (``BURST`` not reached, ``HIGH_WATER`` bytes, the
        end), and by a short task when the producer starts to wait."""
        batch = Batch()

        def on_wait() -> None:  # the producer is about to wait
            # One hand-off at most is in flight: after it quick is 0, so the
            # next chunk goes back to the pump, whose _flush waits for it.
            batch.quick, batch.waited = 0, True
            if batch.chunks:
                self._handing = done = anyio.Event()
                group.start_soon(self._send_handed, batch.take(), done)

        try:
            while (why := await Watched(self._collect(source, batch), on_wait)) is not _ENDED:
                if why is _LATE:
                    return True
                if not await self._flush(batch):
                    return False
                if type(why) is ServerSend and not await self._send_item(why):
                    return False
                if batch.quick >= BURST:
                    await self._checkpoint()  # a producer that never waits lets others run
        except Exception:
            await self._flush(batch)  # every chunk before the error: _chunks is its index
            raise
        if await self._flush(batch):
            await self._finish_body()
        return False

    async def _collect(self, source: AsyncIterator[Any], batch: Batch) -> object:
        """Encode items into ``batch`` until it should be sent: ``_MORE``, a
        ``ServerSend`` to send after it, ``_LATE`` (stopped), ``_ENDED``.
        Called with nothing held; counts in locals (the per-chunk path), told
        of a wait by ``batch.waited``, which ``on_wait`` sets."""
        encode, append = self._fmt.encode, batch.chunks.append
        quick, size, burst, high_water, mask = batch.quick, 0, BURST, HIGH_WATER, MAX_CHUNKS - 1
        async for item in source:
            if batch.waited:  # on_wait has taken what was held
                batch.waited = False
                quick = size = 0
            if self._reason is not None:
                return _LATE
            body: bytes | memoryview
            if type(item) is bytes:
                body = item
            elif type(item) is ServerSend:
                batch.quick = quick
                return item
            else:
                body = encode(item)
            append(body)
            size += len(body)
            quick += 1
            # Past BURST, held until HIGH_WATER bytes or MAX_CHUNKS chunks
            # (empty ones add no bytes, and the pump's checkpoint must come).
            if quick <= burst or size >= high_water or not quick & mask:
                batch.quick = quick
                return _MORE
        return _ENDED

    async def _flush(self, batch: Batch) -> bool:
        """Send the held chunks as one message, after any handed off earlier."""
        if self._handing is not None:
            await self._handing.wait()
            self._handing = None
        if not batch.chunks:
            return True
        return await self._send_batch(batch.take())

    async def _send_handed(self, batch: list[bytes | memoryview], done: anyio.Event) -> None:
        try:
            await self._send_batch(batch)
        except Exception as exc:  # the server's (OSError is _emit's): as the pump would
            await self._fail(exc)
            self.stop(EndReason.PRODUCER_ERROR)  # the pump may be waiting on the producer
        finally:
            done.set()

    async def _send_batch(self, batch: list[bytes | memoryview]) -> bool:
        body = batch[0] if len(batch) == 1 else b"".join(batch)
        if self._attention and self._reason is None:
            self._take_stamp(self._chunks)
        if not await self._emit(_body(body)):
            return False
        self._chunks += len(batch)
        self._bytes += len(body)
        return True

    async def _fail(self, error: BaseException) -> None:
        """Turn a producer error into an error status (before commit) or an
        in-band marker followed by a cut stream (after)."""
        if self._refused:
            return self._start_refused(error)
        self._listen_now()  # the error's sends are timed like any
        self._error = error
        if not self._end(EndReason.PRODUCER_ERROR):
            return  # already stopped: nothing more to tell the client
        if self._phase is Phase.PENDING:
            try:
                return await self._send_error_response(error)
            except Exception as exc:  # the server refused the error's start
                if not self._refused:
                    raise
                return self._start_refused(exc)
        if not await self._commit(self._start):  # wait out a commit already in flight
            return
        marker = self._format_safely(self._fmt.error_marker, error)
        if marker:
            await self._emit(_body(marker))

    def _start_refused(self, error: BaseException) -> None:
        # The server's own exception is what the response re-raises, once (over
        # a producer error it was refusing to report): the server logs it and
        # closes the connection. No second start, no log line here. The reason
        # overrides an earlier PRODUCER_ERROR: that the client got nothing is
        # what matters.
        if not isinstance(error, _StartRefused):
            self._error = error
        self._reason = EndReason.START_REFUSED
        self.stop(EndReason.START_REFUSED)

    async def _send_error_response(self, error: BaseException) -> None:
        status = status_for(error)
        if status >= 500:
            logger.error("producer failed before the first chunk; answering %d", status,
                         exc_info=error)
        rendered = self._format_safely(self._fmt.error_response, status, error)
        headers, body = rendered or (_PLAIN_500_HEADERS, _PLAIN_500)
        status = status if rendered else 500
        start = {"type": "http.response.start", "status": status, "headers": headers}
        if await self._commit(start) and await self._emit(
                {"type": "http.response.body", "body": body, "more_body": False}):
            self._phase = Phase.COMPLETE

    def _format_safely(self, render: Callable[..., _T], *args: Any) -> _T | None:
        # A format that cannot render the error (a header it cannot encode, say)
        # must not turn one error into an ExceptionGroup: log it, fall back.
        try:
            return render(*args)
        except Exception:
            logger.exception("the response format failed to render an error")
            return None

    # -- the end ------------------------------------------------------------

    async def _send_final(self, final: bytes) -> None:
        """A drain's last event and the terminator, bounded by the send timeout."""
        if self._refused:
            return  # nothing may follow a refused start
        limit = self._policy.send_timeout or self._policy.cleanup_timeout
        with anyio.move_on_after(limit):
            try:
                if not await self._commit(self._start):
                    return
                if final and not await self._emit(_body(final)):
                    return
                self._phase = Phase.ENDING
                if await self._emit(_END):
                    self._phase = Phase.COMPLETE
            except Exception:  # best effort after the stream: log, never raise
                logger.exception("could not send the drain's final message")

    async def _close(self, source: object, late: bool) -> bool:
        """Close the producer, shielded from the cancellation that may have ended
        the stream and bounded by the cleanup timeout. Returns True on timeout.
        ``late``: it yielded after the stream was stopped (driver/closing.py)."""
        if getattr(source, "ag_frame", True) is None:
            return False  # a finished async generator: nothing to close, no scope
        timeout = self._policy.cleanup_timeout
        with anyio.move_on_after(timeout, shield=True) as scope:
            try:
                if late and isinstance(source, AsyncGenerator):
                    warner = Warner(source)
                    if await close_after_late_item(source):
                        warner.yielded_after_disconnect()
                else:
                    await close_source(source, timeout)
            except Exception as exc:
                if ignored_generator_exit(exc):  # the producer yielded in its finally
                    Warner(source).yielded_after_disconnect()
                else:
                    logger.error("the producer raised while being closed", exc_info=exc)
        return scope.cancelled_caught or (
            isinstance(source, ThreadedIterator) and not source.closed
        )

    def _outcome(self, duration: float, cleanup_timed_out: bool) -> Outcome:
        reason = self._reason
        if reason is None:  # not reached by any path today; the outcome says what is known
            reason = EndReason.PRODUCER_ERROR if self._error else EndReason.COMPLETED
        return Outcome(
            reason=reason,
            status_code=self.status,
            headers_sent=self._phase >= Phase.STREAMING,
            chunks_sent=self._chunks,
            duration=duration,
            body_complete=self._phase is Phase.COMPLETE,
            error=self._error,
            cleanup_timed_out=cleanup_timed_out,
            bytes_sent=self._bytes,
            first_byte_after=None if self._first_at == math.inf else self._first_at - self._started,
        )
