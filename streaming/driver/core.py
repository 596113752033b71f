"""The driver: one response, one task group, one place that calls send/receive."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import CodeType
from typing import Any, TypeVar

import anyio
from anyio.lowlevel import checkpoint

from streaming._checks import check_seconds
from streaming._types import Message, RawHeaders, Receive, Send
from streaming.driver.batching import Batcher
from streaming.driver.request import RequestStream
from streaming.driver.sources import ThreadedIterator, close_source, producer_busy
from streaming.exceptions import (
    ContentTypeError,
    StreamEnded,
    StreamingConfigError,
    StreamingWarning,
)
from streaming.formats import Format, status_for
from streaming.outcome import EndReason, Outcome

logger = logging.getLogger("streaming")

#: Headers waiting to be sent; ``_SENDING`` while ``send(start)`` is in flight.
_PENDING, _SENDING, _SENT = 0, 1, 2

#: Yield to the event loop once every 1024 chunks (see ``Driver._pump_chunks``):
#: about a millisecond of a busy producer, a negligible cost per chunk.
_YIELD_MASK = 1023

#: What an error response falls back to when the format cannot render one.
_PLAIN_500 = b"Internal Server Error"
_PLAIN_500_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"),
                      (b"content-length", b"21")]

_T = TypeVar("_T")

#: What ``anext`` returns here for an exhausted producer.
_EXHAUSTED = object()

#: A timer that fires this early still counts as due (clock granularity).
_TIMER_SLACK = 0.001


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamPolicy:
    """Timing knobs of one response (seconds; ``None`` or ``0`` turns one off).

    ``commit_deadline``: how long to hold the headers back waiting for the first
    chunk, so an error before it can still become an HTTP error status. ``0``
    commits at once (Starlette's behaviour); ``None`` waits however long it takes.
    ``cleanup_timeout``: how long closing the producer may take before the
    outcome reports ``cleanup_timed_out``.
    ``ping_interval``: send the format's keep-alive after this much silence.
    ``send_timeout``: a client that takes longer than this to accept one
    message is treated as gone (``EndReason.SEND_TIMEOUT``).
    ``batch``: send all the chunks the producer has ready as one message
    (``streaming/driver/batching.py``).
    """

    commit_deadline: float | None = 1.0
    cleanup_timeout: float = 5.0
    ping_interval: float | None = None
    send_timeout: float | None = None
    batch: bool = False

    def __post_init__(self) -> None:
        check_seconds("commit_deadline", self.commit_deadline, zero_ok=True)
        check_seconds("cleanup_timeout", self.cleanup_timeout, none_ok=False)
        check_seconds("ping", self.ping_interval, zero_ok=True)
        check_seconds("send_timeout", self.send_timeout)
        if type(self.batch) is not bool:
            raise StreamingConfigError(f"batch must be True or False, not {self.batch!r}")


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


class _ClientGone(Exception):
    """Internal: ``send()`` raised ``OSError`` (an ASGI 2.4 server's way to say
    the client left). Kept apart from an ``OSError`` the producer raises, which
    is a producer error like any other."""


class Driver:
    """Runs one response: commit, pump, race the listener, close the producer."""

    # Slots: thousands of idle streams each hold one driver.
    __slots__ = (
        "_batcher",
        "_bytes",
        "_cancelled_mid_await",
        "_chunks",
        "_commit_due",
        "_complete",
        "_ended_by",
        "_error",
        "_final",
        "_first_at",
        "_fmt",
        "_head",
        "_head_sent",
        "_listening",
        "_look_due",
        "_policy",
        "_quiet_since",
        "_receive",
        "_request",
        "_scope",
        "_seen",
        "_send",
        "_source",
        "_start",
        "_started",
        "_terminating",
        "_warned",
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
        self._head = _PENDING
        self._head_sent: anyio.Event | None = None
        self._commit_due = self._look_due = self._quiet_since = self._first_at = math.inf
        self._seen = 0
        self._batcher: Batcher | None = None
        self._scope: anyio.CancelScope | None = None
        self._source: object = None
        self._ended_by: EndReason | None = None  # set by whoever stops the stream early
        self._cancelled_mid_await = False
        self._warned = False
        self._error: BaseException | None = None
        self._final: bytes | None = None  # a drain's last words
        self._chunks = self._bytes = 0
        self._started = math.inf
        self._complete = False
        self._terminating = False
        self._listening = True  # until the listener has seen http.disconnect
        self.status = status

    async def run(self, source: AsyncIterator[Any]) -> Outcome:
        """Stream ``source`` to the client and return how it ended."""
        self._started = started = anyio.current_time()
        self._source = source
        self._start_timers(started)
        try:
            async with anyio.create_task_group() as group:
                self._scope = group.cancel_scope
                group.start_soon(self._listen)
                try:  # here, not in a helper: one coroutine frame less per stream
                    if self._ended_by is None:  # a drain may have stopped it already
                        await self._pump(source, group)
                except _ClientGone:
                    self._client_left()
                except ContentTypeError as exc:
                    await self._fail(ContentTypeError(exc.chunk, self._chunks))
                except StreamEnded as exc:  # the producer's own reason: a clean end
                    self.stop(exc.reason, exc.final)
                except Exception as exc:
                    await self._fail(exc)
                await self._stop_listening(group.cancel_scope)
        finally:
            timed_out = await self._close(source)
        if self._final is not None and not self._complete:
            await self._send_final(self._final)
        return self._outcome(anyio.current_time() - started, timed_out)

    async def run_head(self, source: object) -> Outcome:
        """Answer a HEAD request: headers, an empty body, and the producer closed
        before it ever ran."""
        started = anyio.current_time()
        try:
            await self._send(self._start)
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
            self._head, self._complete = _SENT, True
        except OSError:
            self._ended_by = EndReason.CLIENT_DISCONNECTED
        timed_out = await self._close(source)
        self._ended_by = self._ended_by or EndReason.HEAD
        return self._outcome(anyio.current_time() - started, timed_out)

    # -- what observers read while the stream runs (no cost per chunk) --------

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
        if self._ended_by is EndReason.DRAINED:
            return "draining"
        return "waiting" if self._first_at == math.inf else "streaming"

    def stop(self, reason: EndReason, final: bytes | None = None) -> None:
        """End the stream early from outside the body (a drain, a watchdog):
        cancel the producer, then send ``final`` and the terminator if given."""
        if self._complete or self._terminating or self._ended_by is not None:
            return
        self._ended_by = reason
        self._final = final
        if self._batcher is not None:
            self._batcher.stopped = True
        # An async generator suspended at an await (ag_running) gets the
        # cancellation there; if it then yields, it yielded from an except or
        # finally block: worth a warning. A chunk that was merely on its way
        # when the client left is dropped without one.
        self._cancelled_mid_await = bool(getattr(self._source, "ag_running", False))
        if self._scope is not None:
            self._scope.cancel()

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
        receive = self._receive
        try:
            while True:
                due = self._next_due()
                if due == math.inf:
                    message = await receive()
                else:
                    with anyio.CancelScope(deadline=due) as timer:
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
        self._client_left()
        if self._request is not None:
            # After stop(): the producer is cancelled, not told of a cut body.
            self._request.close()

    async def _forward(self, request: RequestStream, message: Message) -> None:
        # Wait for the producer to take the message (bounded memory), firing
        # the timers that fall due meanwhile. A send cancelled by a timer has
        # not delivered the message, so it is simply tried again.
        while True:
            with anyio.CancelScope(deadline=self._next_due()) as timer:
                await request.forward(message)
            if not timer.cancelled_caught:
                return
            await self._fire_timers()

    async def _stop_listening(self, scope: anyio.CancelScope) -> None:
        # Once the response is complete, a server answers receive() with
        # http.disconnect (ASGI HTTP spec; uvicorn also wakes a pending one),
        # so the listener usually ends by itself within one turn of the loop:
        # no need to cancel it, which costs more than that turn (anyio's
        # cancel() formats the task's repr and schedules a delivery loop).
        if self._complete:
            await checkpoint()
        if self._listening:
            scope.cancel()

    def _client_left(self) -> None:
        # Servers also report a disconnect once the response is complete: ignored.
        self.stop(EndReason.CLIENT_DISCONNECTED)

    def _start_timers(self, now: float) -> None:
        deadline = self._policy.commit_deadline
        self._commit_due = now + deadline if deadline else math.inf
        ping, limit = self._policy.ping_interval, self._policy.send_timeout
        self._quiet_since = now
        self._look_due = now + min(ping or math.inf, (limit or math.inf) / 2)

    def _next_due(self) -> float:
        if self._head == _PENDING:
            return min(self._commit_due, self._look_due)
        return self._look_due

    async def _fire_timers(self) -> None:
        now = anyio.current_time()
        try:
            if self._head == _PENDING and now >= self._commit_due:
                await self._commit(self._start)
            if now >= self._look_due:
                await self._look(now)
        except OSError:
            self._client_left()

    async def _commit(self, start: Message) -> None:
        """Send the response start exactly once, whoever asks first."""
        if self._head == _SENT:
            return
        if self._head == _SENDING:
            if self._head_sent is None:  # made only when someone has to wait
                self._head_sent = anyio.Event()
            await self._head_sent.wait()
            if self._head == _SENT:
                return
        self._head = _SENDING
        try:
            await self._send(start)
        except BaseException:
            self._head = _PENDING  # not sent (cancelled or refused): may be tried again
            raise
        finally:
            if self._head_sent is not None:  # wake waiters either way
                self._head_sent.set()
                self._head_sent = None
        self._head = _SENT
        self.status = start["status"]

    # -- the body -----------------------------------------------------------

    def _pump(self, source: AsyncIterator[Any], group: anyio.abc.TaskGroup) -> Awaitable[None]:
        # A plain def returning the coroutine: no frame of its own while it runs.
        if self._policy.batch:
            return self._pump_batches(source, group)
        return self._pump_chunks(source)

    async def _pump_chunks(self, source: AsyncIterator[Any]) -> None:
        # The first chunk is special (it commits the headers); the loop after it
        # does one encode and one send per chunk, plus a checkpoint every
        # _YIELD_MASK + 1 chunks: a producer that never awaits, sending to a
        # server whose send() does not suspend (uvicorn's, until its buffer
        # fills, and always once the client is gone), would otherwise never let
        # the disconnect listener, or any other connection, run.
        encode, send, mask, size = self._fmt.encode, self._send, _YIELD_MASK, len
        if self._policy.commit_deadline == 0:  # Starlette's way: headers first
            await self._commit_before_first_chunk()
        first = await anext(source, _EXHAUSTED)
        if self._ended_by is not None:
            return self._drop_late_chunk()
        if first is _EXHAUSTED:
            await self._commit_before_first_chunk()
        else:
            body = first if type(first) is ServerSend else self._fmt.encode_first(first)
            await self._commit_before_first_chunk()
            await self._send_body(body)
            self._first_at = anyio.current_time()
            self._chunks = sent = 1
            self._bytes = nbytes = len(body)
            async for item in source:
                if self._ended_by is not None:
                    return self._drop_late_chunk()
                # Pre-encoded bytes pass through every format untouched; skipping
                # the call for them is the cheapest thing on this path.
                if type(item) is bytes:
                    body = item
                elif type(item) is ServerSend:  # a server-side file send: rare, large
                    await self._send_body(item)
                    sent, nbytes = self._chunks, self._bytes
                    continue
                else:
                    body = encode(item)
                try:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                except OSError as exc:  # only send()'s OSError means the client left
                    raise _ClientGone from exc
                sent += 1
                nbytes += size(body)
                self._chunks = sent  # read by the keep-alive look: progress
                self._bytes = nbytes  # and by the inspector
                if not sent & mask:
                    await checkpoint()
        await self._finish_body()

    async def _send_body(self, body: bytes | memoryview | ServerSend) -> None:
        if type(body) is ServerSend:
            return await self._send_server_piece(body)
        try:
            await self._send({"type": "http.response.body", "body": body, "more_body": True})
        except OSError as exc:  # an ASGI 2.4 server saying the client left
            raise _ClientGone from exc

    async def _send_server_piece(self, piece: ServerSend) -> None:
        if piece.ends_body:  # pathsend: the last message, no terminator after it
            await checkpoint()  # as _finish_body: see a disconnect that is already in
            self._terminating = True
        try:
            await self._send(piece.message)
        except OSError as exc:
            raise _ClientGone from exc
        self._chunks += 1
        self._bytes += piece.size
        self._complete = piece.ends_body

    async def _finish_body(self) -> None:
        if self._complete:  # a ServerSend ended the body
            return
        # Let a disconnect that already arrived be seen before calling the
        # response complete: a 2.3 server would drop the terminator silently.
        await checkpoint()
        self._terminating = True  # from here on, nobody may stop us or send more
        try:
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            self._ended_by = EndReason.CLIENT_DISCONNECTED
            return
        self._complete = True

    async def _pump_batches(self, source: AsyncIterator[Any], group: anyio.abc.TaskGroup) -> None:
        if self._policy.commit_deadline == 0:
            await self._commit_before_first_chunk()
        self._batcher = batcher = Batcher(self._fmt.encode_first, self._fmt.encode)
        group.start_soon(batcher.produce, source)
        batch = await batcher.take()
        if batch is not None:
            await self._commit_before_first_chunk()
        while batch is not None:
            body = batch[0] if len(batch) == 1 else b"".join(batch)
            await self._send_body(body)
            if not self._chunks:
                self._first_at = anyio.current_time()
            self._chunks += len(batch)
            self._bytes += len(body)
            batch = await batcher.take()
        if batcher.late_chunk:
            return self._drop_late_chunk()
        if batcher.error is not None:
            raise batcher.error  # every chunk before it was sent: _chunks is its index
        await self._commit_before_first_chunk()
        await self._finish_body()

    async def _commit_before_first_chunk(self) -> None:
        try:
            await self._commit(self._start)
        except OSError as exc:
            raise _ClientGone from exc

    async def _fail(self, error: BaseException) -> None:
        """Turn a producer error into an error status (before commit) or an
        in-band marker followed by a cut stream (after)."""
        self._error = error
        try:
            if self._head == _PENDING:
                await self._send_error_response(error)
                return
            await self._commit(self._start)  # wait out a commit already in flight
            marker = self._format_safely(self._fmt.error_marker, error)
            if marker:
                await self._send({"type": "http.response.body", "body": marker,
                                  "more_body": True})
        except OSError:
            self._ended_by = EndReason.CLIENT_DISCONNECTED

    async def _send_error_response(self, error: BaseException) -> None:
        status = status_for(error)
        if status >= 500:
            logger.error("producer failed before the first chunk; answering %d", status,
                         exc_info=error)
        rendered = self._format_safely(self._fmt.error_response, status, error)
        headers, body = rendered or (_PLAIN_500_HEADERS, _PLAIN_500)
        status = status if rendered else 500
        await self._commit({"type": "http.response.start", "status": status, "headers": headers})
        await self._send({"type": "http.response.body", "body": body, "more_body": False})
        self._complete = True

    def _format_safely(self, render: Callable[..., _T], *args: Any) -> _T | None:
        # A format that cannot render the error (a header it cannot encode, say)
        # must not turn one error into an ExceptionGroup: log it, fall back.
        try:
            return render(*args)
        except Exception:
            logger.exception("the response format failed to render an error")
            return None

    def _drop_late_chunk(self) -> None:
        if self._cancelled_mid_await:
            self._warn_yield_after_disconnect()

    def _warn_yield_after_disconnect(self) -> None:
        if self._warned:
            return
        self._warned = True
        # Point the warning at the producer's own code, not at the driver.
        code = _producer_code(self._source)
        warnings.warn_explicit(
            f"the producer {code.co_name if code else ''}() yielded after the client "
            "disconnected (a yield inside finally or except?); the chunk was dropped "
            "and the producer closed",
            StreamingWarning,
            code.co_filename if code else __file__,
            code.co_firstlineno if code else 0,
        )

    # -- keep-alive and slow clients ----------------------------------------

    async def _look(self, now: float) -> None:
        """Ping an idle stream, time out a stuck ``send()``, at no cost per
        chunk: the chunk counter shows progress since the last look, and
        ``producer_busy`` tells "waiting for the producer" (idle: ping) from
        "parked at a yield" (the body is blocked in ``send()``)."""
        ping, limit = self._policy.ping_interval, self._policy.send_timeout
        if self._chunks != self._seen:
            # The exact time of the last chunk is unknown (recording it would
            # cost per chunk), except for the first one, the common case of an
            # event stream that sent its opening event and went quiet.
            first_only = self._seen == 0 and self._chunks == 1
            self._quiet_since = self._first_at if first_only else now
            self._seen = self._chunks
        quiet = now - self._quiet_since
        if producer_busy(self._source):
            if ping and quiet >= ping - _TIMER_SLACK:
                self._quiet_since = now
                await self._ping(limit)
            self._look_due = self._quiet_since + (ping or math.inf)
            if limit:
                self._look_due = min(self._look_due, anyio.current_time() + limit / 2)
        elif limit and quiet >= limit:
            self.stop(EndReason.SEND_TIMEOUT)
        else:
            self._look_due = now + min(ping or math.inf, (limit or math.inf) / 2)

    async def _ping(self, limit: float | None) -> None:
        keepalive = self._fmt.keepalive()
        if keepalive is None:
            return
        if not limit:  # no send timeout: no cancel scope, the cheap path of every ping
            await self._commit(self._start)
            await self._send({"type": "http.response.body", "body": keepalive, "more_body": True})
            return
        with anyio.move_on_after(limit) as scope:
            await self._commit(self._start)
            await self._send({"type": "http.response.body", "body": keepalive, "more_body": True})
        if scope.cancelled_caught:
            self.stop(EndReason.SEND_TIMEOUT)

    # -- the end ------------------------------------------------------------

    async def _send_final(self, final: bytes) -> None:
        """A drain's last event and the terminator, bounded by the send timeout."""
        limit = self._policy.send_timeout or self._policy.cleanup_timeout
        with anyio.move_on_after(limit):
            try:
                await self._commit(self._start)
                if final:
                    await self._send({"type": "http.response.body", "body": final,
                                      "more_body": True})
                await self._send({"type": "http.response.body", "body": b"", "more_body": False})
                self._complete = True
            except OSError:
                pass  # the client left meanwhile: nothing more to say
            except Exception:  # best effort after the stream: log, never raise
                logger.exception("could not send the drain's final message")

    async def _close(self, source: object) -> bool:
        """Close the producer, shielded from the cancellation that may have ended
        the stream and bounded by the cleanup timeout. Returns True on timeout."""
        if getattr(source, "ag_frame", True) is None:
            return False  # a finished async generator: nothing to close, no scope
        timeout = self._policy.cleanup_timeout
        with anyio.move_on_after(timeout, shield=True) as scope:
            try:
                await close_source(source, timeout)
            except Exception as exc:
                self._report_close_error(exc)
        return scope.cancelled_caught or (
            isinstance(source, ThreadedIterator) and not source.closed
        )

    def _report_close_error(self, exc: Exception) -> None:
        # "generator ignored GeneratorExit": the producer yielded in its finally.
        if isinstance(exc, RuntimeError) and "GeneratorExit" in str(exc):
            self._warn_yield_after_disconnect()
        else:
            logger.error("the producer raised while being closed", exc_info=exc)

    def _outcome(self, duration: float, cleanup_timed_out: bool) -> Outcome:
        if self._ended_by is not None:
            reason = self._ended_by
        elif self._error is not None:
            reason = EndReason.PRODUCER_ERROR
        else:
            reason = EndReason.COMPLETED
        return Outcome(
            reason=reason,
            status_code=self.status,
            headers_sent=self._head == _SENT,
            chunks_sent=self._chunks,
            duration=duration,
            body_complete=self._complete,
            error=self._error,
            cleanup_timed_out=cleanup_timed_out,
            bytes_sent=self._bytes,
            first_byte_after=None if self._first_at == math.inf else self._first_at - self._started,
        )


def _producer_code(source: object) -> CodeType | None:
    if isinstance(source, ThreadedIterator):
        source = source.iterator
    code = getattr(source, "ag_code", None) or getattr(source, "gi_code", None)
    return code if isinstance(code, CodeType) else None
