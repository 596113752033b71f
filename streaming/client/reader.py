"""The reconnecting reader both client readers share (httpx I/O glue).

One ``__anext__`` does whatever it takes to produce the next item: read a
chunk, or, when the connection ended, wait the backoff and connect again.
The total deadline is a cancel scope entered and left inside each
``__anext__`` call (never held across a ``yield``, which anyio forbids).
"""

from __future__ import annotations

import math
import random as _random
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Generic, TypeVar

import anyio
import httpx

from streaming.client.backoff import Backoff
from streaming.exceptions import (
    ReadDeadlineExceeded,
    ReconnectFailed,
    StreamingConfigError,
    StreamReadError,
)

T = TypeVar("T")

#: Statuses worth another attempt (RFC 9110 15.5.9, 15.6; RFC 6585 4).
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})

#: Bytes of a refusing response's body quoted in the error.
_EXCERPT = 200


class ReconnectingReader(Generic[T]):
    """Items of one logical stream, over as many connections as it takes.

    Subclasses say what a chunk holds (``_feed``), what ends a connection
    means (``_connection_ended``) and what to send on each attempt.
    """

    media_types: frozenset[str] = frozenset()

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str | httpx.URL,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        backoff: Backoff | None = None,
        deadline: float | None = None,
        max_failures: int = 8,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if deadline is not None and (type(deadline) not in (int, float) or not deadline > 0):
            raise StreamingConfigError(f"deadline must be a number of seconds above 0 or "
                                       f"None, not {deadline!r}")
        if type(max_failures) is not int or max_failures < 1:
            raise StreamingConfigError(f"max_failures must be an int >= 1, not {max_failures!r}")
        self.client = client
        self.url = url
        self._shown = _without_secrets(httpx.URL(url))
        self.method = method
        self.headers = dict(headers or {})
        self.params = dict(params or {})
        self.backoff = backoff or Backoff()
        self.deadline = deadline
        self.max_failures = max_failures
        self.random = random
        #: Connections made so far.
        self.attempts = 0
        self._failures = 0  # attempts in a row that delivered nothing
        self._last_failure: BaseException | None = None
        self._retry_after: float | None = None
        self._delivered = False  # by the current attempt
        self._ends_at: float | None = None
        self._response: httpx.Response | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        self._ready: deque[T] = deque()
        self._done = False

    # -- what subclasses define ----------------------------------------------

    def _request_headers(self) -> dict[str, str]:
        return dict(self.headers)

    def _request_params(self) -> dict[str, str]:
        return dict(self.params)

    def _feed(self, chunk: bytes) -> list[T]:
        raise NotImplementedError

    def _connection_ended(self, clean: bool) -> list[T]:
        """The connection is over: return any last items, set ``_done`` if
        the stream is finished, raise if it cannot go on."""
        raise NotImplementedError

    def _base_delay(self) -> float | None:
        return None

    # -- the async iterator ----------------------------------------------------

    def __aiter__(self) -> ReconnectingReader[T]:
        return self

    async def __anext__(self) -> T:
        now = anyio.current_time()
        if self._ends_at is None:
            self._ends_at = now + self.deadline if self.deadline is not None else math.inf
        with anyio.move_on_after(self._ends_at - now) as timer:
            return await self._next_item()
        assert timer.cancelled_caught
        await self.aclose()
        raise ReadDeadlineExceeded(f"the stream from {self._shown} did not end within its "
                                   f"deadline of {self.deadline} s")

    async def __aenter__(self) -> ReconnectingReader[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the current connection, if any; the reader is finished."""
        self._done = True
        self._chunks = None
        if self._response is not None:
            response, self._response = self._response, None
            with anyio.CancelScope(shield=True):
                await response.aclose()

    async def _next_item(self) -> T:
        while not self._ready:
            if self._done:
                raise StopAsyncIteration
            if self._chunks is None:
                await self._connect()
                continue
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                await self._end_connection(clean=True)
                continue
            except httpx.TransportError as exc:  # a cut, a reset, a read timeout
                self._last_failure = exc
                await self._end_connection(clean=False)
                continue
            self._take(self._feed(chunk))
        return self._ready.popleft()

    def _take(self, items: list[T]) -> None:
        if items:
            self._delivered = True
            self._failures = 0
            self._ready.extend(items)

    async def _end_connection(self, clean: bool) -> None:
        response, self._response, self._chunks = self._response, None, None
        if response is not None:
            await response.aclose()
        if not self._delivered:
            self._failures += 1
        self._take(self._connection_ended(clean))

    # -- connecting ------------------------------------------------------------

    async def _connect(self) -> None:
        if self.attempts:
            await self._wait_before_reconnecting()
        self.attempts += 1
        self._delivered = False
        self._retry_after = None
        url = httpx.URL(self.url)
        params = self._request_params()
        if params:  # merged into the URL's own query, which it keeps
            url = url.copy_merge_params(params)
        request = self.client.build_request(self.method, url, headers=self._request_headers())
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TransportError as exc:  # refused, reset, timed out
            self._failures += 1
            self._last_failure = exc
            return
        await self._accept(response)

    async def _accept(self, response: httpx.Response) -> None:
        status = response.status_code
        if status == 204:  # WHATWG 9.2.3: "No Content" means do not reconnect
            await response.aclose()
            self._done = True
            return
        if status in RETRYABLE:
            self._retry_after = _retry_after(response)
            await response.aclose()
            self._failures += 1
            self._last_failure = StreamReadError(f"{self._shown} answered {status}", status)
            return
        if status != 200:
            raise StreamReadError(f"{self._shown} answered {status}: "
                                  f"{await _excerpt(response)!r}", status)
        media_type = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type not in self.media_types:
            await response.aclose()
            raise StreamReadError(f"{self._shown} sent Content-Type {media_type!r}, not one of "
                                  f"{sorted(self.media_types)}", status)
        self._response = response
        self._chunks = response.aiter_bytes()

    async def _wait_before_reconnecting(self) -> None:
        if self._failures >= self.max_failures:
            raise ReconnectFailed(f"{self._shown} failed {self._failures} times in a row",
                                  self._failures, _status_of(self._last_failure)
                                  ) from self._last_failure
        delay = self.backoff.delay(self._failures, self._base_delay(), self.random)
        if self._retry_after is not None:
            delay = max(delay, min(self._retry_after, self.backoff.maximum))
        assert self._ends_at is not None
        if anyio.current_time() + delay >= self._ends_at and self._failures:
            raise ReconnectFailed(f"{self._shown} failed {self._failures} times in a row and "
                                  "the deadline passes before the next attempt",
                                  self._failures, _status_of(self._last_failure)
                                  ) from self._last_failure
        await anyio.sleep(delay)


def _without_secrets(url: httpx.URL) -> str:
    # Errors and logs name the server and path, never credentials or a query
    # (API keys travel there).
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"


def _retry_after(response: httpx.Response) -> float | None:
    # RFC 9110 10.2.3: delay-seconds (an HTTP-date is not honoured: no clock trust).
    value = response.headers.get("retry-after", "")
    return float(value) if value.isascii() and value.isdigit() else None


def _status_of(error: BaseException | None) -> int | None:
    return error.status_code if isinstance(error, StreamReadError) else None


async def _excerpt(response: httpx.Response) -> str:
    body = b""
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= _EXCERPT:
                break
    except httpx.HTTPError:
        pass
    finally:
        await response.aclose()
    return body[:_EXCERPT].decode("utf-8", "replace")
