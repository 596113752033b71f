"""The in-process client: a fake HTTP server on one side, a test on the other."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Literal
from urllib.parse import urlsplit

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from streaming._types import ASGIApp, Message, RawHeaders, Scope
from streaming.encoders.sse import ServerSentEvent
from streaming.encoders.sse_parser import SSEParser
from streaming.exceptions import (
    AppStillRunningError,
    HeaderValidationError,
    ResponseClosedError,
    StreamingConfigError,
)
from streaming.tracing.middleware import RecordedMessage, Trace, TraceMiddleware

SpecVersion = Literal["2.3", "2.4"]
_SPEC_VERSIONS = ("2.3", "2.4")
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 9.1: a token


class TestResponse:
    """One request in flight. Read chunks as they come, disconnect at any moment.

    ``messages`` is every ASGI message so far, timestamped, in both directions;
    ``body_messages()`` is the app's body messages among them, and ``events()``
    the body read so far parsed as an event stream. ``status_code`` and
    ``raw_headers`` are filled in by ``wait_for_start()``.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, exchange: _Exchange, disconnect_after: int | None = None) -> None:
        self._exchange = exchange
        self._disconnect_after = disconnect_after
        self.status_code: int | None = None
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.complete = False
        self.closed = False  # the stream() block has exited

    @property
    def headers(self) -> dict[str, str]:
        """Header names lower-cased; a repeated header keeps its last value."""
        return {k.decode("latin-1"): v.decode("latin-1") for k, v in self.raw_headers}

    @property
    def body(self) -> bytes:
        """The body bytes read so far."""
        return b"".join(self.chunks)

    @property
    def messages(self) -> list[RecordedMessage]:
        return self._exchange.trace.messages

    def events(self, *, include_comments: bool = False) -> list[ServerSentEvent]:
        """The body read so far, parsed by ``SSEParser`` (WHATWG SSE 9.2.6): the
        events it completes, an unterminated last one left out. With
        ``include_comments=True`` each comment line (a keep-alive) is in the list
        too, as ``ServerSentEvent(comment=...)``, where it came."""
        return SSEParser(include_comments=include_comments).feed(self.body)

    def body_messages(self) -> list[Message]:
        """Every ``http.response.body`` message the app has sent so far, in order,
        as the dicts it sent (``body``, ``more_body``): how the body was framed,
        the empty ones and the terminator included. Like ``messages``, it holds
        what the app sent after the client had left, which no client read."""
        return [m.message for m in self.messages
                if m.direction == "send" and m.message["type"] == "http.response.body"]

    @property
    def app_exception(self) -> BaseException | None:
        """What the app raised, once it has returned (``None`` if nothing)."""
        return self._exchange.trace.exception

    @property
    def disconnected(self) -> bool:
        return self._exchange.client_gone

    async def wait_for_start(self) -> None:
        """Wait for ``http.response.start``; raise what the app raised if it
        failed before sending one."""
        if self.status_code is not None:
            return
        self._check_open()
        while (message := await self._next_message()) is not None:
            if message["type"] == "http.response.start":
                self.status_code = message["status"]
                self.raw_headers = list(message.get("headers", []))
                return
        await self._exchange.app_done.wait()
        if self.app_exception is not None:
            raise self.app_exception
        raise RuntimeError("the app returned without starting a response")

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """Iterate over each non-empty body chunk as the app sends it, until the
        body ends, the client disconnects (``disconnect_after``), or the app
        returns. Breaking out early is fine: nothing is left to clean up."""
        return _Chunks(self)

    async def next_chunk(self) -> bytes | None:
        """The next non-empty body chunk, or ``None`` at the end of the body."""
        await self.wait_for_start()
        if not self.complete:
            self._check_open()
        if self.complete or len(self.chunks) == self._disconnect_after:
            if not self.complete and not self.disconnected:
                await self.disconnect()
            return None
        while (message := await self._next_message()) is not None:
            body = bytes(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete = True
            if body:
                self.chunks.append(body)
                return body
            if self.complete:
                return None
        return None

    def _check_open(self) -> None:
        if self.closed:
            raise ResponseClosedError(
                "this response's stream() block has exited before its body ended, and the "
                "client left then: read it inside the block (.body has what was read)")

    async def _next_message(self) -> Message | None:
        """The app's next message, or ``None`` once it is done or we left."""
        try:
            return await self._exchange.from_app.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return None

    async def read(self) -> bytes:
        """Read to the end of the body and return all of it."""
        async for _ in self.iter_chunks():
            pass
        return self.body

    async def disconnect(self) -> None:
        """Leave, as a client closing its connection: the app's next
        ``receive()`` returns ``http.disconnect``."""
        self._exchange.leave()
        await anyio.lowlevel.checkpoint()

    async def wait_for_app(self) -> None:
        """Wait until the app has returned (or raised)."""
        await self._exchange.app_done.wait()


class _Chunks:
    """The iterator ``TestResponse.iter_chunks`` returns (a class, not an async
    generator, so a test may break out of it without a finalizer warning)."""

    def __init__(self, response: TestResponse) -> None:
        self._response = response

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._response.next_chunk()
        if chunk is None:
            raise StopAsyncIteration
        return chunk


class _Exchange:
    """The server side of one request: ``receive``/``send`` for the app."""

    def __init__(self, body: bytes, spec_version: SpecVersion, buffer: float) -> None:
        self.body = body
        self.spec_version = spec_version
        self.to_client: MemoryObjectSendStream[Message]
        self.from_app: MemoryObjectReceiveStream[Message]
        self.to_client, self.from_app = anyio.create_memory_object_stream[Message](buffer)
        self.request_sent = False
        self.client_gone = False
        self.response_done = False
        self.ended = anyio.Event()  # client gone or response complete
        self.app_done = anyio.Event()
        self.trace: Trace

    async def receive(self) -> Message:
        if not self.request_sent:
            self.request_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        # Like uvicorn: after the request body, receive() blocks until the client
        # leaves or the response is complete, then reports a disconnect.
        await self.ended.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.client_gone:
            return self._after_disconnect()
        try:
            await self.to_client.send(message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return self._after_disconnect()
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.response_done = True
            self.ended.set()

    def _after_disconnect(self) -> None:
        # uvicorn (ASGI 2.3) returns without suspending; a 2.4 server may raise.
        if self.spec_version == "2.4":
            raise OSError("the client has disconnected")

    def leave(self) -> None:
        if not self.response_done:
            self.client_gone = True
        self.ended.set()
        self.from_app.close()

    async def run_app(
        self, app: ASGIApp, scope: Scope, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        def started(trace: Trace) -> None:
            self.trace = trace
            task_status.started()

        recorder = TraceMiddleware(app, self._keep_trace, on_start=started)
        try:
            await recorder(scope, self.receive, self.send)
        except Exception:
            pass  # kept in self.trace.exception by the recorder
        finally:
            self.app_done.set()
            self.to_client.close()

    def _keep_trace(self, trace: Trace) -> None:
        self.trace = trace


class StreamingClient:
    """Drive an ASGI app in-process and read its responses as streams.

    ``spec_version`` is the ASGI HTTP spec version the fake server advertises
    and imitates after a disconnect. ``buffer`` is how many messages the server
    holds for a test that is not reading; past it ``send()`` blocks, as it does
    on a real server whose client reads slowly. ``raise_app_exceptions`` re-raises
    an exception from the app when the ``stream()`` block exits.
    ``app_exit_timeout`` bounds how long the exit waits for the app to return
    after the client left; an app still running then is cancelled and
    ``AppStillRunningError`` raised. Arguments that cannot work (a spec version
    other than "2.3" or "2.4", a ``str`` body, a header that is not latin-1)
    raise ``StreamingConfigError`` before anything runs.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        spec_version: SpecVersion = "2.3",
        buffer: float = math.inf,
        raise_app_exceptions: bool = True,
        app_exit_timeout: float = 5.0,
    ) -> None:
        if spec_version not in _SPEC_VERSIONS:
            raise StreamingConfigError(f"spec_version must be '2.3' or '2.4', not {spec_version!r}")
        if not _is_number(buffer) or not buffer >= 0 or (buffer != math.inf and buffer % 1):
            raise StreamingConfigError(f"buffer must be a whole number >= 0 or math.inf, "
                                       f"not {buffer!r}")
        if not _is_number(app_exit_timeout) or not 0 < app_exit_timeout < math.inf:
            raise StreamingConfigError(f"app_exit_timeout must be a finite number > 0, "
                                       f"not {app_exit_timeout!r}")
        self.app = app
        self.spec_version = spec_version
        self.buffer = buffer
        self.raise_app_exceptions = raise_app_exceptions
        self.app_exit_timeout = app_exit_timeout

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        disconnect_after: int | None = None,
        wait_for_start: bool = True,
    ) -> AsyncIterator[TestResponse]:
        """Send one request; yield the response once its start message is in
        (or at once with ``wait_for_start=False``, to leave before the headers).

        ``disconnect_after=N`` makes ``iter_chunks()`` leave after N chunks.
        Leaving the block disconnects if the body is unfinished, then waits for
        the app to return (at most ``app_exit_timeout`` seconds).
        """
        scope = self._scope(method, url, headers or {}, body)  # checks them all
        if disconnect_after is not None and (type(disconnect_after) is not int
                                             or disconnect_after < 0):
            raise StreamingConfigError(f"disconnect_after must be an int >= 0 or None, "
                                       f"not {disconnect_after!r}")
        exchange = _Exchange(bytes(body), self.spec_version, self.buffer)
        still_running = False
        test_error: Exception | None = None
        async with anyio.create_task_group() as group:
            await group.start(exchange.run_app, self.app, scope)
            response = TestResponse(exchange, disconnect_after)
            try:
                if wait_for_start:
                    await response.wait_for_start()
                yield response
            except Exception as exc:
                # Raised again below, outside the task group, so the test sees
                # its own exception rather than an ExceptionGroup around it.
                test_error = exc
            finally:
                if not exchange.response_done:
                    exchange.leave()
                with anyio.move_on_after(self.app_exit_timeout, shield=True):
                    await exchange.app_done.wait()
                if not exchange.app_done.is_set():
                    still_running = True
                    group.cancel_scope.cancel()
                exchange.from_app.close()
                response.closed = True
        if test_error is not None:
            raise test_error
        if still_running:
            raise AppStillRunningError(
                f"the app had not returned {self.app_exit_timeout:g} s after the client "
                "left (does it ignore http.disconnect?); it was cancelled")
        error = exchange.trace.exception
        if error is not None and self.raise_app_exceptions:
            raise error

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> TestResponse:
        """Send one request and read the whole body."""
        async with self.stream(method, url, headers=headers, body=body) as response:
            await response.read()
        return response

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> TestResponse:
        return await self.request("GET", url, headers=headers)

    def _scope(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Scope:
        if not isinstance(method, str) or _METHOD.fullmatch(method) is None:
            raise StreamingConfigError(f"method must be an HTTP method token, not {method!r}")
        if not isinstance(url, str) or not url.isascii() or not url.isprintable() or " " in url:
            raise StreamingConfigError(f"url must be a printable ASCII path, not {url!r} "
                                       "(percent-encode it)")
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise StreamingConfigError(f"body must be bytes, not {type(body).__name__}"
                                       + (" (encode it)" if isinstance(body, str) else ""))
        parts = urlsplit(url)
        raw: RawHeaders = [(b"host", b"testserver")]
        raw += [_request_header(k, v) for k, v in headers.items()]
        if body:
            raw.append((b"content-length", str(len(body)).encode()))
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": self.spec_version},
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": "http",
            "path": parts.path or "/",
            "raw_path": (parts.path or "/").encode(),
            "query_string": parts.query.encode(),
            "root_path": "",
            "headers": raw,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": {},
        }


def _request_header(name: object, value: object) -> tuple[bytes, bytes]:
    # Any latin-1 text goes, control characters included: tests send hostile
    # headers on purpose. Only what cannot be bytes on the wire is refused.
    if not isinstance(name, str) or not isinstance(value, str):
        raise HeaderValidationError(f"request header {name!r}: name and value must be str")
    try:
        return name.lower().encode("latin-1"), value.encode("latin-1")
    except UnicodeEncodeError:
        raise HeaderValidationError(f"request header {name!r}: {value!r} is not latin-1 "
                                    "(HTTP header bytes are; encode it, e.g. RFC 8187)") from None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
