"""Layer 2: the ASGI driver, the one place that calls ``send()`` and ``receive()``.

One anyio task group per response. The host task pumps the body; a child task
listens on ``receive()`` for ``http.disconnect`` from the first moment; a second
child commits the headers when the commit deadline passes. Whichever ends the
race cancels the group's scope, so nothing outlives the ``async with``. After it,
a shielded and time-bounded cleanup closes the producer whatever happened.

Why a listener on every server: ASGI HTTP spec 2.3 servers (uvicorn, hypercorn)
report a departed client only through ``receive()`` and silently drop later
``send()`` calls; 2.4 servers may raise ``OSError`` from ``send()`` instead. We
handle both the same way, so there is one disconnect path, not one per version.
"""

from __future__ import annotations

import http
import logging
import threading
import warnings
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import anyio.to_thread
from anyio.lowlevel import checkpoint

from streaming._types import Message, RawHeaders, Receive, Send
from streaming.exceptions import ContentTypeError, StreamingWarning
from streaming.outcome import EndReason, Outcome

logger = logging.getLogger("streaming")

#: Headers waiting to be sent; ``_SENDING`` while ``send(start)`` is in flight.
_PENDING, _SENDING, _SENT = 0, 1, 2

#: Yield to the event loop once every 64 chunks (see ``Driver._pump_chunks``).
_YIELD_MASK = 63


@dataclass(frozen=True, slots=True)
class StreamPolicy:
    """Timing knobs of one response.

    ``commit_deadline``: seconds to hold the headers back while waiting for the
    first chunk, so an error before it can still become an HTTP error status.
    ``0`` commits at once (Starlette's behaviour); ``None`` waits for the first
    chunk however long it takes.
    ``cleanup_timeout``: how long closing the producer may take after the stream
    ends, before the outcome reports ``cleanup_timed_out``.
    """

    commit_deadline: float | None = 1.0
    cleanup_timeout: float = 5.0


class StreamFormat(Protocol):
    """What a response format gives the driver: three pure functions."""

    def encode(self, item: Any) -> bytes | memoryview:
        """Return the body bytes for one produced item; raise ``ContentTypeError``
        for an item of the wrong type (the driver fills in its index)."""

    def error_marker(self, error: BaseException) -> bytes | None:
        """Return a final in-band error marker, or ``None`` to cut silently."""

    def error_response(self, status: int, error: BaseException) -> tuple[RawHeaders, bytes]:
        """Return the headers and body of the error response sent before commit."""


def status_for(error: BaseException) -> int:
    """Return the HTTP status an error before the first chunk turns into: the
    error's own ``status_code`` when it carries a 4xx/5xx one, else 500."""
    status = getattr(error, "status_code", None)
    if type(status) is int and 400 <= status <= 599:
        return status
    return 500


def describe_error(error: BaseException) -> tuple[int, str]:
    """Return the status and the client-facing message for a producer error.

    An error that carries a status chose what to tell the client (its ``detail``);
    any other error is a bug whose text may hold secrets, so the client only gets
    the status's reason phrase and the full traceback goes to the log.
    """
    status = status_for(error)
    detail = getattr(error, "detail", None) if status != 500 or _deliberate(error) else None
    if isinstance(detail, str) and detail:
        return status, detail
    try:
        return status, http.HTTPStatus(status).phrase
    except ValueError:
        return status, "Error"


def _deliberate(error: BaseException) -> bool:
    return type(getattr(error, "status_code", None)) is int


class ThreadedIterator:
    """An async iterator over a sync one, each ``next()`` run in a worker thread.

    A blocking producer (``time.sleep``, a file, a database cursor) therefore
    never stalls the event loop. Cancellation cannot interrupt a thread, so
    closing is a handshake under a lock: if a ``next()`` is running, the worker
    closes the iterator itself as soon as it returns; otherwise ``aclose()``
    closes it, and a worker that starts later sees the request and does nothing.
    Either way the producer's ``finally`` runs even if we stop waiting for it.
    """

    def __init__(self, iterator: Iterator[Any]) -> None:
        self._iterator = iterator
        self._lock = threading.Lock()
        self._running = False
        self._close_requested = False
        self._closed = threading.Event()
        self._close_error: BaseException | None = None

    def __aiter__(self) -> ThreadedIterator:
        return self

    async def __anext__(self) -> Any:
        item = await anyio.to_thread.run_sync(self._next_in_thread, abandon_on_cancel=True)
        if item is _EXHAUSTED:
            raise StopAsyncIteration
        return item

    def _next_in_thread(self) -> Any:
        with self._lock:
            if self._close_requested:
                return _EXHAUSTED
            self._running = True
        try:
            return next(self._iterator, _EXHAUSTED)
        finally:
            with self._lock:
                self._running = False
                close_here = self._close_requested
            if close_here:
                self._close_in_thread()

    def _close_in_thread(self) -> None:
        try:
            close = getattr(self._iterator, "close", None)
            if close is not None:
                close()
        except BaseException as exc:  # handed to aclose(), which re-raises it
            self._close_error = exc
        finally:
            self._closed.set()

    async def aclose(self, wait_limit: float = 5.0) -> None:
        """Close the iterator in a worker thread and wait, at most ``wait_limit`` seconds."""
        with self._lock:
            if self._close_requested:
                return
            self._close_requested = True
            close_now = not self._running
        if close_now:
            await anyio.to_thread.run_sync(self._close_in_thread, abandon_on_cancel=True)
        else:
            # The waiting thread gives up by itself at the limit: none is left behind.
            await anyio.to_thread.run_sync(self._closed.wait, wait_limit, abandon_on_cancel=True)
        if self._close_error is not None:
            raise self._close_error

    @property
    def closed(self) -> bool:
        return self._closed.is_set()


_EXHAUSTED = object()

ContentStream = AsyncIterable[Any] | Iterable[Any]


def open_source(content: ContentStream) -> AsyncIterator[Any]:
    """Return an async iterator over ``content``, threading sync iterables."""
    if isinstance(content, AsyncIterable):
        return content.__aiter__()
    return ThreadedIterator(iter(content))


async def close_source(source: object, wait_limit: float) -> None:
    """Close a source if it can be closed, sync or async."""
    if isinstance(source, ThreadedIterator):
        await source.aclose(wait_limit)
        return
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()
        return
    close = getattr(source, "close", None)
    if close is not None:
        await anyio.to_thread.run_sync(close)


class Driver:
    """Runs one response: commit, pump, race the listener, close the producer."""

    def __init__(
        self,
        receive: Receive,
        send: Send,
        fmt: StreamFormat,
        status: int,
        headers: RawHeaders,
        policy: StreamPolicy,
    ) -> None:
        self._receive = receive
        self._send = send
        self._fmt = fmt
        self._start: Message = {"type": "http.response.start", "status": status, "headers": headers}
        self._policy = policy
        self._head = _PENDING
        self._head_sent: anyio.Event | None = None
        self._timer: anyio.CancelScope | None = None
        self._scope: anyio.CancelScope | None = None
        self._client_gone = False
        self._warned = False
        self._error: BaseException | None = None
        self._chunks = 0
        self._complete = False
        self._source: object = None
        self._cancelled_mid_await = False
        self.status = status

    async def run(self, source: AsyncIterator[Any]) -> Outcome:
        """Stream ``source`` to the client and return how it ended."""
        started = anyio.current_time()
        self._source = source
        try:
            async with anyio.create_task_group() as group:
                self._scope = group.cancel_scope
                group.start_soon(self._wait_for_disconnect)
                deadline = self._policy.commit_deadline
                if deadline is not None and deadline > 0:
                    self._head_sent = anyio.Event()
                    self._timer = anyio.CancelScope()
                    group.start_soon(self._commit_at, deadline)
                elif deadline == 0:
                    await self._commit(self._start)
                await self._pump(source)
                group.cancel_scope.cancel()
        finally:
            timed_out = await self._close(source)
        return self._outcome(anyio.current_time() - started, timed_out)

    async def run_head(self, source: object) -> Outcome:
        """Answer a HEAD request: headers, an empty body, and the producer closed
        before it ever ran."""
        started = anyio.current_time()
        try:
            await self._send(self._start)
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
            self._head = _SENT
        except OSError:
            self._client_gone = True
        timed_out = await self._close(source)
        return Outcome(
            EndReason.CLIENT_DISCONNECTED if self._client_gone else EndReason.HEAD,
            self.status,
            self._head == _SENT,
            0,
            anyio.current_time() - started,
            not self._client_gone,
            cleanup_timed_out=timed_out,
        )

    # -- the race -----------------------------------------------------------

    async def _wait_for_disconnect(self) -> None:
        # Request body messages are drained and dropped: a streaming response
        # does not read the request body (read it before returning the response).
        receive = self._receive
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        except OSError:
            pass
        self._client_left()

    def _client_left(self) -> None:
        if self._complete:
            return  # servers report a disconnect once the response is complete
        self._client_gone = True
        # An async generator suspended at an await (ag_running) is about to get
        # the cancellation there; if it then yields, it yielded from an except
        # or finally block: worth a warning. A chunk that was merely on its way
        # when the client left is dropped without one.
        self._cancelled_mid_await = bool(getattr(self._source, "ag_running", False))
        assert self._scope is not None
        self._scope.cancel()

    async def _commit_at(self, delay: float) -> None:
        assert self._timer is not None
        with self._timer:
            await anyio.sleep(delay)
        if not self._timer.cancelled_caught:
            try:
                await self._commit(self._start)
            except OSError:
                self._client_left()

    async def _commit(self, start: Message) -> None:
        """Send the response start exactly once, whoever asks first."""
        if self._head == _SENT:
            return
        if self._head == _SENDING:
            assert self._head_sent is not None
            await self._head_sent.wait()
            return
        self._head = _SENDING
        self.status = start["status"]
        await self._send(start)
        self._head = _SENT
        if self._head_sent is not None:
            self._head_sent.set()

    # -- the body -----------------------------------------------------------

    async def _pump(self, source: AsyncIterator[Any]) -> None:
        try:
            await self._pump_chunks(source)
        except OSError:
            # An ASGI 2.4 server tells us the client left by raising from send().
            self._client_left()
        except ContentTypeError as exc:
            await self._fail(ContentTypeError(exc.chunk, self._chunks))
        except Exception as exc:
            await self._fail(exc)

    async def _pump_chunks(self, source: AsyncIterator[Any]) -> None:
        # The first chunk is special (it commits the headers); the loop after it
        # does one encode and one send per chunk, plus a checkpoint every
        # _YIELD_EVERY chunks: a producer that never awaits, sending to a server
        # whose send() does not suspend (uvicorn's, until its buffer fills, and
        # always once the client is gone), would otherwise never let the
        # disconnect listener, or any other connection, run.
        encode = self._fmt.encode
        send = self._send
        first = await anext(source, _EXHAUSTED)
        if self._client_gone:
            return self._drop_late_chunk()
        if first is _EXHAUSTED:
            await self._commit_before_first_chunk()
        else:
            body = encode(first)
            await self._commit_before_first_chunk()
            await send({"type": "http.response.body", "body": body, "more_body": True})
            self._chunks = 1
            async for item in source:
                if self._client_gone:
                    return self._drop_late_chunk()
                await send({"type": "http.response.body", "body": encode(item), "more_body": True})
                self._chunks += 1
                if not self._chunks & _YIELD_MASK:
                    await checkpoint()
        # Let a disconnect that already arrived be seen before calling the
        # response complete: a 2.3 server would drop the terminator silently.
        await checkpoint()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        self._complete = True

    async def _commit_before_first_chunk(self) -> None:
        await self._commit(self._start)
        if self._timer is not None:
            self._timer.cancel()

    async def _fail(self, error: BaseException) -> None:
        """Turn a producer error into an error status (before commit) or an
        in-band marker followed by a cut stream (after)."""
        self._error = error
        if self._head == _PENDING:
            await self._send_error_response(error)
            return
        await self._commit(self._start)  # wait out a commit already in flight
        marker = self._fmt.error_marker(error)
        if marker:
            try:
                await self._send({"type": "http.response.body", "body": marker, "more_body": True})
            except OSError:
                self._client_gone = True

    async def _send_error_response(self, error: BaseException) -> None:
        status = status_for(error)
        if status >= 500:
            logger.error("producer failed before the first chunk; answering %d", status,
                         exc_info=error)
        headers, body = self._fmt.error_response(status, error)
        await self._commit({"type": "http.response.start", "status": status, "headers": headers})
        if self._timer is not None:
            self._timer.cancel()
        try:
            await self._send({"type": "http.response.body", "body": body, "more_body": False})
            self._complete = True
        except OSError:
            self._client_gone = True

    def _drop_late_chunk(self) -> None:
        if self._cancelled_mid_await:
            self._warn_yield_after_disconnect()

    def _warn_yield_after_disconnect(self) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(
                "the producer yielded after the client disconnected (a yield inside "
                "finally or except?); the chunk was dropped and the producer closed",
                StreamingWarning,
                stacklevel=2,
            )

    # -- the end ------------------------------------------------------------

    async def _close(self, source: object) -> bool:
        """Close the producer, shielded from the cancellation that may have ended
        the stream and bounded by the cleanup timeout. Returns True on timeout."""
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
        if self._client_gone:
            reason = EndReason.CLIENT_DISCONNECTED
        elif self._error is not None:
            reason = EndReason.PRODUCER_ERROR
        else:
            reason = EndReason.COMPLETED
        return Outcome(
            reason,
            self.status,
            self._head == _SENT,
            self._chunks,
            duration,
            self._complete,
            self._error,
            cleanup_timed_out,
        )


__all__ = [
    "ContentStream",
    "ContentTypeError",
    "Driver",
    "StreamFormat",
    "StreamPolicy",
    "ThreadedIterator",
    "close_source",
    "describe_error",
    "open_source",
    "status_for",
]
