"""Every exception `streaming` raises, in one tree.

``StreamingError`` is the base; catch it to catch anything the library raises on
purpose. Each class says who raises it and when. Exceptions raised by *your*
producer are never wrapped: they reach the driver as they are, and the driver
reports them through the response's outcome.
"""

from __future__ import annotations

from collections.abc import Mapping

from streaming.outcome import EndReason


class StreamingError(Exception):
    """Base class of every exception raised by `streaming` itself."""


class StreamingConfigError(StreamingError, ValueError):
    """Raised for an argument that cannot work, as soon as it is given: by a
    response's constructor (a negative or NaN time, a status code outside
    100-599, an SSE separator or ``error_event`` the format cannot carry), by a
    format, ``StreamPolicy``, ``Drain``, ``ReplayBuffer``, the relay (an unknown
    ``mode``, a bad timeout), the exceptions that carry a status
    (``StreamRefused(200)``), and the wire viewer. Every bad argument is one of
    these; its subclasses say which kind."""


class ContentTypeError(StreamingError, TypeError):
    """Raised by the driver when a producer yields a chunk that is not ``bytes``,
    ``bytearray``, ``memoryview`` or ``str``. The message names the type and the
    zero-based chunk index. It is also a ``TypeError``, so ``except TypeError`` works.
    The stream ends (cut if headers were sent) and the producer is still closed."""

    def __init__(self, chunk: object, index: int = 0) -> None:
        self.chunk = chunk
        self.index = index
        super().__init__(
            f"chunk {index} has type {type(chunk).__qualname__}; a streaming producer must "
            "yield bytes, bytearray, memoryview or str"
        )


class InvalidContentError(StreamingConfigError, TypeError):
    """Raised by ``StreamingResponse(...)`` when ``content`` is not an iterable of
    chunks (for example a bare ``str`` or ``bytes``, which would stream one
    character or one integer at a time)."""


class ResponseReusedError(StreamingError, RuntimeError):
    """Raised when the same response object is called as an ASGI app twice: its
    producer can only be consumed once."""


class StreamRefused(StreamingError):
    """Raise this from a producer before its first chunk to answer with an HTTP
    error instead of a stream: the driver sends ``status_code`` (with ``headers``
    and ``detail`` as the body) because no header has been committed yet.

    Any exception with an integer ``status_code`` attribute between 400 and 599
    (Starlette's and FastAPI's ``HTTPException`` among them) is treated the same way.
    Raised after the headers are out, it becomes an in-band error like any other."""

    def __init__(
        self, status_code: int, detail: str = "", headers: Mapping[str, str] | None = None
    ) -> None:
        if type(status_code) is not int or not 400 <= status_code <= 599:
            raise StreamingConfigError(
                f"StreamRefused needs a 4xx or 5xx status, not {status_code!r}")
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers or {})
        super().__init__(f"{status_code} {detail}".rstrip())


class SSEEncodingError(StreamingError, ValueError):
    """Raised by the Server-Sent Events encoder when a field cannot be represented
    in ``text/event-stream`` (a line break in ``event`` or ``id``, a NUL in ``id``,
    a negative or non-integer ``retry``). Nothing is stripped silently."""


class HeaderValidationError(StreamingConfigError):
    """Raised by a response's constructor for a header that cannot go on the
    wire: a name or value that is not ``str``, holds a line break or another
    control character, or is not latin-1 (RFC 9110 section 5.5); also by the
    wire viewer and ``StreamingClient`` for a request header they cannot send.
    Request headers are client input and are never an error: an invalid
    ``Last-Event-ID`` is ignored (``read_last_event_id`` returns ``None``)."""


class StreamingWarning(RuntimeWarning):
    """Issued (once per response) by the driver for a producer mistake it can
    survive, such as a producer that yields inside ``finally`` after the client
    disconnected: the chunk is dropped and the producer closed."""


class UnsupportedScopeError(StreamingError, RuntimeError):
    """Raised when a response is called with a non-HTTP ASGI scope (a websocket,
    say): streamed bodies are an HTTP feature."""


class MissingEventIdError(StreamingConfigError):
    """Raised by ``ReplayBuffer.append`` for an event without an ``id``: an
    event that cannot be named cannot be resumed after."""


class UpstreamError(StreamingError):
    """Raised by the OpenAI-compatible relay's producer
    (``streaming.integrations.openai_relay``) when the upstream model API fails:
    an error status, a refused or dropped connection, a timeout, or an error
    object sent inside the stream. Before the first token the driver turns it
    into the reader's HTTP status (``status_code``, ``headers`` such as
    ``Retry-After``, and ``body()`` as the JSON error); after it, into an in-band
    error in the stream's own format.

    ``message``, ``type``, ``param`` and ``code`` are the fields of the OpenAI
    API's error object that the reader is told. The relay writes ``message``
    itself (a generic sentence per status class): the upstream's own words,
    which may quote the operator's key or the upstream's internals, are kept in
    ``upstream_message`` for the log, and reach readers only when the relay is
    built with ``expose_upstream_errors=True``."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type: str = "upstream_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        upstream_message: str | None = None,
    ) -> None:
        if status_code.__class__ is not int or not 400 <= status_code <= 599:
            raise StreamingConfigError(
                f"UpstreamError needs a 4xx or 5xx status, not {status_code!r}")
        self.upstream_message = upstream_message
        self.status_code = status_code
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})
        super().__init__(f"{status_code} {message}")

    @property
    def detail(self) -> str:
        """What the driver tells the reader (``message``)."""
        return self.message

    def body(self) -> dict[str, dict[str, str | None]]:
        """The OpenAI API's error shape: ``{"error": {message, type, param, code}}``."""
        return {"error": {"message": self.message, "type": self.type,
                          "param": self.param, "code": self.code}}


class ResponseClosedError(StreamingError, RuntimeError):
    """Raised by ``streaming.testing``'s ``TestResponse`` when a test reads a
    response whose ``stream()`` block has already exited before its body ended:
    the client left at the exit, so there is nothing more to read. Read inside
    the block (``body`` still holds what was read)."""


class AppStillRunningError(StreamingError, TimeoutError):
    """Raised when a ``StreamingClient.stream()`` block exits and the app has
    not returned within ``app_exit_timeout`` seconds of the client leaving: the
    app ignores ``http.disconnect``. It has been cancelled by then."""


class SSELimitError(StreamingError, ValueError):
    """Raised by ``SSEParser.feed`` built with ``max_event_size`` when one event
    (its data lines, or a line still without its end) grows past that bound:
    a server streaming a line without end cannot take the reader's memory.
    The relay turns it into an ``UpstreamError`` and closes the upstream."""


class WireFormatError(StreamingError, ValueError):
    """Raised by ``streaming.tracing.wire.WireDecoder.feed`` (the ``python -m
    streaming wire`` viewer) when the bytes are not a valid HTTP/1.1 response: a
    bad status line or size line, chunk data not followed by CRLF, a line or
    chunk past the decoder's bounds. ``events`` holds what the same ``feed``
    call decoded before the error (so a viewer loses nothing it could show)."""

    events: tuple[object, ...] = ()


class NDJSONEncodingError(StreamingError, ValueError):
    """Raised by the NDJSON encoder for an item that cannot be one line of JSON:
    a NaN or an infinity (not JSON), or pre-encoded ``bytes`` that are not exactly
    one line ending in a newline (they would merge with the next line)."""


class FileResponseError(StreamingError, RuntimeError):
    """Raised by ``FileResponse`` when it runs and its path does not exist or is
    not a regular file (a ``RuntimeError``, as Starlette raises)."""


class FileChangedError(StreamingError, RuntimeError):
    """Raised inside ``FileResponse``'s body when the file it serves is
    truncated or rewritten during the download (its size or modification time
    changed, or a read came up short). The response ends cut, so the client
    never holds bytes of two versions under one ``ETag``."""


class RequestBodyError(StreamingError):
    """Raised by the bounded request-body reader (``streaming.RequestBody``,
    ``read_body``, ``read_json``) when it stops reading a request body. It
    carries the answer: ``status_code`` (one per subclass), ``detail`` (safe to
    show the client: it names the limit, never echoes the body) and
    ``headers`` (``Connection: close`` on HTTP/1.x when the unread rest of the
    body makes the connection unusable).

    Raised from a producer before its first chunk it becomes that status, like
    ``StreamRefused``; in a plain Starlette endpoint register one exception
    handler for this class (the README shows it)."""

    status_code = 400

    def __init__(self, detail: str, headers: Mapping[str, str] | None = None) -> None:
        self.detail = detail
        self.headers = dict(headers or {})
        super().__init__(f"{self.status_code} {detail}")


class BodyAlreadyReadError(StreamingError, RuntimeError):
    """Raised when a ``RequestBody`` is iterated a second time: a request body
    arrives once, so it can be read only once (also a ``RuntimeError``)."""


class BodyTooLargeError(RequestBodyError):
    """413: the body's ``Content-Length`` is over ``max_size`` (refused before
    any of it is read), or the bytes received so far are (chunked bodies)."""

    status_code = 413


class BodyTimeoutError(RequestBodyError):
    """408: no body bytes arrived for ``idle_timeout`` seconds, or the whole
    body took longer than ``read_timeout`` (a client trickling a few bytes a second)."""

    status_code = 408


class BodyIncompleteError(RequestBodyError):
    """400: the client disconnected before the end of its body. Nobody is left
    to read the answer; the status only keeps the error in the 4xx family."""


class InvalidJSONError(RequestBodyError, ValueError):
    """400: ``read_json`` / ``parse_json`` got a body that is not one JSON text
    we accept: not UTF-8, malformed, ``NaN``/``Infinity``, nested deeper than
    ``max_depth``, or holding a lone surrogate escape (``"\\ud800"``, which no
    UTF-8 encoder can write back). It is also a ``ValueError``."""


class MultipartError(RequestBodyError, ValueError):
    """400: ``streaming.uploads.multipart_parts`` got a body that is not
    well-formed ``multipart/form-data``: no boundary, broken framing, part
    headers over python-multipart's limits, a part without a name, a field
    read over its ``max_size``, or a body that ends before its closing
    boundary. It is also a ``ValueError``."""


class HubUnavailable(StreamingError):
    """Raised by ``streaming.hub.Hub`` when its backend (a Redis server) cannot
    be reached in time: when the hub starts, by ``publish`` (within the hub's
    ``timeout``, never hanging), and by a new subscription, which the driver
    turns into a 503 with ``Retry-After`` before any event. Subscribers already
    streaming are not affected: they stay connected and catch up when the
    backend is back."""

    status_code = 503

    def __init__(self, message: str = "the event hub is unavailable") -> None:
        super().__init__(message)
        # What a refused client is told; ``message`` (the cause) is for the log.
        self.detail = "the event hub is unavailable"
        self.headers = {"Retry-After": "2"}


class HubClosedError(StreamingError, RuntimeError):
    """Raised by ``Hub.publish`` and by a subscription when the hub is not
    running: enter it first (``async with hub:`` or ``lifespan=hub.lifespan``)."""


class InvalidTopicError(StreamingError, ValueError):
    """Raised by ``Hub.publish`` and ``Hub.subscriber`` for a topic name that is
    not 1-128 characters of letters, digits and ``_.:@/+=-``, or for a
    subscription to no topic, a repeated topic or more than 8 topics."""


class EventTooLargeError(StreamingError, ValueError):
    """Raised by ``Hub.publish`` for an event whose encoded size exceeds the
    hub's per-subscriber queue (``max_queued_bytes``): no subscriber could ever
    receive it."""


class StreamEnded(StreamingError):
    """Raised by a producer that ends its own stream for a reason the driver
    records as the outcome's ``reason`` (an ``EndReason``): the driver sends
    ``final`` (if any) and the terminator, a clean end with no error marker
    and nothing logged. The hub's ``SubscriberOverflow`` is one."""

    def __init__(self, message: str, reason: EndReason, final: bytes = b"") -> None:
        super().__init__(message)
        self.reason = reason
        self.final = final


class SubscriberOverflow(StreamEnded):
    """Raised inside a hub subscriber's producer when the subscriber fell so far
    behind that its bounded queue overflowed. The stream ends cleanly
    (``EndReason.SUBSCRIBER_OVERFLOW``); the client reconnects with its
    ``Last-Event-ID`` and resumes from the hub's history. Nobody else waited
    for it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EndReason.SUBSCRIBER_OVERFLOW)


class SlotStoreUnavailable(StreamingError):
    """Raised by a ``StreamLimiter`` slot store that cannot reach its backend
    (Redis down, say). The limiter answers ``503`` with ``Retry-After`` and
    logs it: a limit that cannot be checked is not waived."""


class StreamReadError(StreamingError):
    """Raised by the client readers (``streaming.client``) for a response they
    must not retry: a status other than ``200``, ``204`` and the retryable
    ones (``408``, ``429``, ``5xx``), a wrong ``Content-Type``, a malformed or
    oversized NDJSON line. ``status_code`` is the response's status, if any."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ReconnectFailed(StreamReadError):
    """Raised by the client readers when the server keeps failing: this many
    attempts in a row delivered nothing (``attempts``), or the deadline passed
    while waiting to reconnect. ``__cause__`` is the last failure."""

    def __init__(self, message: str, attempts: int, status_code: int | None = None) -> None:
        super().__init__(message, status_code)
        self.attempts = attempts


class StreamInterrupted(StreamReadError):
    """Raised by ``read_ndjson`` when the stream was cut after some lines and no
    ``resume`` function says how to continue without repeating them."""


class ReadDeadlineExceeded(StreamReadError, TimeoutError):
    """Raised by the client readers when their total ``deadline`` has passed,
    whatever they were doing (reading, waiting to reconnect)."""
