"""Layer 3: ``StreamingResponse``, a format (``streaming.formats``) plus the driver.

Where it deliberately differs from ``starlette.responses.StreamingResponse``:

- one disconnect path on every ASGI version (a ``receive()`` listener plus
  ``OSError`` from ``send()``), so an idle producer is cancelled on 2.4 servers too;
- headers are held back until the first chunk (or ``commit_deadline``), so an
  error before it becomes a real error status instead of ``200`` and an empty body;
- the producer is always closed (``aclose()``/``close()``), bounded by ``cleanup_timeout``;
- a bad chunk type is a ``ContentTypeError`` naming the chunk, not an
  ``AttributeError`` from ``.encode``;
- ``background`` runs only after a completed stream, and ``on_outcome`` /
  ``wait_for_outcome()`` tell the application why the stream ended.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from typing import Any

import anyio

from streaming._compat import ResponseBase
from streaming._types import BackgroundTask, OutcomeCallback, RawHeaders, Receive, Scope, Send
from streaming.drain import Drain
from streaming.driver import ContentStream, Driver, RequestStream, StreamPolicy, open_source
from streaming.exceptions import (
    InvalidContentError,
    ResponseReusedError,
    StreamingConfigError,
    UnsupportedScopeError,
)
from streaming.formats import Format, TextFormat
from streaming.observe import WATCH_KEY, StreamWatch
from streaming.outcome import EndReason, Outcome
from streaming.responses.headers import (
    ResponseHeaders,
    build_raw_headers,
    send_for_http_version,
)

logger = logging.getLogger("streaming")

#: The methods of a format: a response subclass defining one would be ignored.
_FORMAT_METHODS = ("encode", "encode_first", "keepalive", "error_marker", "error_response")

_UTF8 = TextFormat()


class StreamingResponse(ResponseBase):
    """Stream ``content`` (an async or sync iterable of chunks) as the body.

    The positional signature is Starlette's and FastAPI's; the keyword-only
    arguments after ``*`` are ours. Chunks may be ``bytes``, ``bytearray``,
    ``memoryview`` or ``str`` (encoded with ``charset``). Sync iterables are
    iterated in a worker thread. ``format`` replaces what goes on the wire (a
    ``streaming.formats`` object, such as a ``TextFormat`` subclass).
    """

    media_type: str | None = None
    _charset = "utf-8"

    def __init__(
        self,
        content: ContentStream,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
        *,
        commit_deadline: float | None = 1.0,
        cleanup_timeout: float = 5.0,
        send_timeout: float | None = None,
        batch: bool = False,
        drain: Drain | None = None,
        on_outcome: OutcomeCallback | None = None,
        format: Format | None = None,
        request_stream: RequestStream | None = None,
    ) -> None:
        self.body_iterator = self._check_content(content)
        self.status_code = _check_status(status_code)
        if media_type is not None:
            self.media_type = media_type
        # Any async callable, a Starlette BackgroundTask among them (so the
        # attribute is wider than Starlette's, which mypy calls an override).
        self.background: BackgroundTask | None = background  # type: ignore[assignment]
        self.policy = self._policy(commit_deadline=commit_deadline,
                                   cleanup_timeout=cleanup_timeout,
                                   send_timeout=send_timeout, batch=batch)
        #: What goes on the wire for each item, a keep-alive and an error.
        self.format: Format = self._default_format() if format is None else format
        self.drain = drain
        self.on_outcome = on_outcome
        #: Where the driver forwards the request body while the response streams.
        self.request_stream = request_stream
        self.raw_headers: RawHeaders = build_raw_headers(headers, self.media_type, self.charset)
        self._outcome: Outcome | None = None
        self._outcome_ready: anyio.Event | None = None
        self._called = False

    @property
    def headers(self) -> ResponseHeaders:  # type: ignore[override]  # a MutableMapping too
        """The response headers; changes before the response runs are sent."""
        return ResponseHeaders(self.raw_headers)

    @property
    def outcome(self) -> Outcome | None:
        """How the stream ended, or ``None`` while it runs (or before)."""
        return self._outcome

    async def wait_for_outcome(self) -> Outcome:
        """Wait until the response has ended and return its outcome."""
        if self._outcome is None:
            if self._outcome_ready is None:
                self._outcome_ready = anyio.Event()
            await self._outcome_ready.wait()
        assert self._outcome is not None
        return self._outcome

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Formats are objects of their own now: a response subclass that defines
        # encode() and friends would be silently ignored, so say so at once.
        super().__init_subclass__(**kwargs)
        defined = [name for name in _FORMAT_METHODS if name in vars(cls)]
        if defined:
            raise StreamingConfigError(
                f"{cls.__name__} defines {', '.join(defined)}: a response's wire format is "
                "its format object; subclass a format from streaming.formats and pass it "
                "as format=")

    def _policy(self, **settings: Any) -> StreamPolicy:
        return StreamPolicy(**settings)

    def _default_format(self) -> Format:
        # Formats are immutable: the common one is shared by every response.
        return _UTF8 if self.charset == "utf-8" else TextFormat(charset=self.charset)

    @property
    def charset(self) -> str:
        """The text encoding of ``str`` chunks and error messages."""
        return self._charset

    @charset.setter
    def charset(self, value: str) -> None:
        self._charset = value
        fmt = getattr(self, "format", None)
        if isinstance(fmt, TextFormat) and fmt.charset != value:
            self.format = dataclasses.replace(fmt, charset=value)

    # -- ASGI ------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise UnsupportedScopeError(f"{type(self).__name__} serves HTTP, not {scope['type']!r}")
        if self._called:
            raise ResponseReusedError(f"this {type(self).__name__} has already been sent")
        self._called = True
        send = send_for_http_version(send, scope)  # no Connection header on HTTP/2
        driver = Driver(receive, send, self.format, self.status_code, self.raw_headers,
                        self.policy, self.request_stream)
        if WATCH_KEY in scope:
            outcome = await self._observed(scope, driver, lambda: self._run(scope, driver))
        else:  # one coroutine frame less for every wake-up of the stream
            outcome = await self._run(scope, driver)
        await self._finish(outcome)

    async def _observed(self, scope: Scope, driver: Driver,
                        run: Callable[[], Awaitable[Outcome]]) -> Outcome:
        """``run()``, reported to the ``StreamWatch`` above, if any."""
        watch: StreamWatch | None = scope.get(WATCH_KEY)
        if watch is None:
            return await run()
        record, outcome = watch.open(scope, type(self).__name__, driver), None
        try:
            outcome = await run()
        finally:
            watch.close(record, outcome)
        return outcome

    def _run(self, scope: Scope, driver: Driver) -> Awaitable[Outcome]:
        # A plain def returning the driver's coroutine: no frame of its own
        # stays on the stack, which every wake-up of the stream walks through.
        if scope.get("method") == "HEAD":  # before _content_for: no factory runs
            return driver.run_head(self.body_iterator)
        content = self._content_for(scope, driver)
        if self.drain is None:
            return driver.run(open_source(content))
        return self._run_tracked(self.drain, driver, content)

    async def _run_tracked(self, drain: Drain, driver: Driver, content: ContentStream) -> Outcome:
        with drain.track(lambda final: self._stop_for_drain(driver, final)):
            return await driver.run(open_source(content))

    def _content_for(self, scope: Scope, driver: Driver) -> ContentStream:
        """The producer to run for this request (a subclass may build it from
        the request, as ``EventSourceResponse`` does with ``Last-Event-ID``,
        and hand it the ``driver``'s offers)."""
        return self.body_iterator

    def _stop_for_drain(self, driver: Driver, final: object) -> None:
        try:
            last_words = bytes(self.format.encode(final))
        except (TypeError, ValueError):
            # The drain's item suits another format (an SSE event for a text
            # stream, say): end cleanly all the same, terminator and all.
            logger.info("%s cannot encode the drain's final item %r; ending without it",
                        type(self).__name__, final)
            last_words = b""
        driver.stop(EndReason.DRAINED, last_words)

    async def _finish(self, outcome: Outcome) -> None:
        self._outcome = outcome
        if self._outcome_ready is not None:  # made only if someone waits
            self._outcome_ready.set()
        if self.on_outcome is not None:
            result = self.on_outcome(outcome)
            if inspect.isawaitable(result):
                await result
        if outcome.reason is EndReason.COMPLETED and self.background is not None:
            await self.background()
        if outcome.error is not None and not outcome.body_complete and (
                outcome.headers_sent or outcome.reason is EndReason.START_REFUSED):
            # The status is out and cannot change (or the server refused the
            # start); raising is how ASGI says the response broke: the server
            # logs it and closes the connection without the terminating chunk,
            # which the client detects.
            raise outcome.error

    @staticmethod
    def _check_content(content: object) -> ContentStream:
        return check_content(content)


def check_content(content: object) -> ContentStream:
    """Return ``content`` if it is an iterable of chunks, else raise
    ``InvalidContentError`` (a bare ``str`` or ``bytes`` included)."""
    if isinstance(content, str | bytes | bytearray | memoryview):
        raise InvalidContentError(
            f"content is a {type(content).__name__}, which would stream one "
            "element at a time; pass an iterable of chunks, such as [content]"
        )
    if not isinstance(content, AsyncIterable | Iterable):
        raise InvalidContentError(
            f"content must be an async or sync iterable of chunks, not {type(content).__name__}"
        )
    return content


def _check_status(status_code: object) -> int:
    if type(status_code) is not int or not 100 <= status_code <= 599:
        raise StreamingConfigError(f"status_code must be an int from 100 to 599, "
                                   f"not {status_code!r}")
    return status_code
