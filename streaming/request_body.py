"""Read a request body within limits: size, idle time, total time, JSON shape.

``await request.json()`` reads any size at any speed. ``RequestBody`` reads
over any ASGI ``receive`` (or a Starlette ``Request``) and stops as soon as a
limit is crossed, raising a ``RequestBodyError`` that carries its status:

* a ``Content-Length`` over ``max_size`` is refused before anything is read
  (so a client sending ``Expect: 100-continue`` never gets its ``100``);
* a chunked body (no ``Content-Length``) is refused with 413 by the first
  message that takes it over ``max_size``;
* no bytes for ``idle_timeout`` seconds, or a body still unfinished after
  ``read_timeout`` seconds (a trickle of a few bytes a second), is a 408;
* ``json()`` is a 400 for anything but one strict JSON text (``parse_json``).

Raised before a stream's first chunk, the error becomes its status; in a plain
Starlette app, register one exception handler for ``RequestBodyError``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator
from typing import Any, Protocol

import anyio

from streaming._types import Receive, Scope
from streaming.exceptions import (
    BodyAlreadyReadError,
    BodyIncompleteError,
    BodyTimeoutError,
    BodyTooLargeError,
    InvalidJSONError,
    RequestBodyError,
    StreamingConfigError,
)

#: Defaults sized for JSON APIs (a chat prompt, a form); uploads pass their own.
DEFAULT_MAX_SIZE = 1024 * 1024
DEFAULT_IDLE_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_MAX_DEPTH = 64


class HasReceive(Protocol):
    """What ``RequestBody.of`` needs from a request object (Starlette's has both)."""

    @property
    def scope(self) -> Scope: ...

    @property
    def receive(self) -> Receive: ...


class RequestBody:
    """One request's body, read once, within limits.

    ``async for chunk in body`` yields the chunks as they arrive (for uploads);
    ``await body.read()`` returns them joined; ``await body.json()`` parses them
    with ``parse_json``. ``received`` counts the bytes read so far. Each limit
    may be ``None`` (no limit), but the defaults bound every one.
    """

    def __init__(self, scope: Scope, receive: Receive, *,
                 max_size: int | None = DEFAULT_MAX_SIZE,
                 idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
                 read_timeout: float | None = DEFAULT_READ_TIMEOUT) -> None:
        if max_size is not None and (type(max_size) is not int or max_size < 0):
            raise StreamingConfigError(f"max_size must be an int >= 0 or None, not {max_size!r}")
        for name, value in (("idle_timeout", idle_timeout), ("read_timeout", read_timeout)):
            if value is not None and not (isinstance(value, (int, float))
                                          and math.isfinite(value) and value > 0):
                raise StreamingConfigError(f"{name} must be a finite number > 0 or None, "
                                           f"not {value!r}")
        self._scope = scope
        self._receive = receive
        self.max_size = max_size
        self.idle_timeout = idle_timeout
        self.read_timeout = read_timeout
        self.received = 0
        self._started = False

    @classmethod
    def of(cls, request: HasReceive, *, max_size: int | None = DEFAULT_MAX_SIZE,
           idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
           read_timeout: float | None = DEFAULT_READ_TIMEOUT) -> RequestBody:
        """The body of a Starlette (or any) request with ``scope`` and ``receive``.
        Read it instead of ``request.body()``/``request.json()``, not after them."""
        return cls(request.scope, request.receive, max_size=max_size,
                   idle_timeout=idle_timeout, read_timeout=read_timeout)

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started:
            raise BodyAlreadyReadError("this request body has already been read")
        self._started = True
        return self._chunks()

    async def read(self) -> bytes:
        """The whole body, or the ``RequestBodyError`` of the first limit crossed."""
        return b"".join([chunk async for chunk in self])

    async def json(self, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
        """The body as JSON (``parse_json``): 400 for anything else."""
        return parse_json(await self.read(), max_depth=max_depth)

    async def _chunks(self) -> AsyncIterator[bytes]:
        self._refuse_declared_length()
        deadline = None if self.read_timeout is None else anyio.current_time() + self.read_timeout
        more = True
        while more:
            message = await self._next_message(deadline)
            if message["type"] == "http.disconnect":
                raise BodyIncompleteError("the client left before the end of its body")
            if message["type"] != "http.request":
                continue
            chunk = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            self.received += len(chunk)
            if self.max_size is not None and self.received > self.max_size:
                raise self._too_large()
            if chunk:
                yield chunk

    def _refuse_declared_length(self) -> None:
        # RFC 9110 8.6: Content-Length = 1*DIGIT. The server has already refused
        # a malformed one; a well-formed one over the limit is refused unread
        # (RFC 9110 15.5.14).
        if self.max_size is None:
            return
        for name, value in self._scope.get("headers", ()):
            if name.lower() == b"content-length" and value.isdigit() \
                    and int(value) > self.max_size:
                raise self._too_large()

    async def _next_message(self, deadline: float | None) -> Any:
        idle_at = None if self.idle_timeout is None else anyio.current_time() + self.idle_timeout
        if deadline is None and idle_at is None:
            return await self._receive()
        with anyio.move_on_at(min(t for t in (deadline, idle_at) if t is not None)):
            return await self._receive()
        if deadline is not None and anyio.current_time() >= deadline:
            reason = f"the request body took longer than {self.read_timeout:g} s"
        else:
            reason = f"no request body bytes for {self.idle_timeout:g} s"
        raise BodyTimeoutError(reason, self._closing_headers())

    def _too_large(self) -> RequestBodyError:
        return BodyTooLargeError(f"the request body is larger than {self.max_size} bytes",
                                 self._closing_headers())

    def _closing_headers(self) -> dict[str, str]:
        # The rest of the body is still on the connection: on HTTP/1.x ask the
        # server to close it (RFC 9110 15.5.9, 15.5.14) rather than read and
        # discard it. HTTP/2 and 3 forbid the header (RFC 9113 8.2.2) and
        # reset just the one stream.
        if self._scope.get("http_version", "1.1") in ("1.0", "1.1"):
            return {"connection": "close"}
        return {}


async def read_body(request: HasReceive, *, max_size: int | None = DEFAULT_MAX_SIZE,
                    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
                    read_timeout: float | None = DEFAULT_READ_TIMEOUT) -> bytes:
    """``await RequestBody.of(request, ...).read()``."""
    return await RequestBody.of(request, max_size=max_size, idle_timeout=idle_timeout,
                                read_timeout=read_timeout).read()


async def read_json(request: HasReceive, *, max_size: int | None = DEFAULT_MAX_SIZE,
                    max_depth: int = DEFAULT_MAX_DEPTH,
                    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
                    read_timeout: float | None = DEFAULT_READ_TIMEOUT) -> Any:
    """``await RequestBody.of(request, ...).json(max_depth=...)``: a bounded
    ``await request.json()`` whose every failure is a ``RequestBodyError``."""
    return await RequestBody.of(request, max_size=max_size, idle_timeout=idle_timeout,
                                read_timeout=read_timeout).json(max_depth=max_depth)


def parse_json(data: bytes | str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse one JSON text strictly or raise ``InvalidJSONError`` (a 400).

    Refused beyond what ``json.loads`` refuses: bytes that are not UTF-8 (RFC
    8259 8.1), ``NaN`` and ``Infinity`` (not JSON), nesting deeper than
    ``max_depth`` (``json.loads`` would raise ``RecursionError`` near 1000), a
    number of more than 4300 digits, and a lone surrogate escape such as
    ``"\\ud800"``: RFC 8259 8.2 leaves it undefined, and the string it makes
    cannot be encoded again, so it would fail later, far from here.
    """
    if type(max_depth) is not int or max_depth < 1:
        raise StreamingConfigError(f"max_depth must be an int >= 1, not {max_depth!r}")
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    except UnicodeDecodeError as exc:
        raise InvalidJSONError(f"the body is not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidJSONError(f"the JSON is nested deeper than {max_depth} levels") from None
    except InvalidJSONError:
        raise
    except json.JSONDecodeError as exc:  # its message names a place, never the text
        raise InvalidJSONError(f"the body is not valid JSON: {exc.msg} at line "
                               f"{exc.lineno} column {exc.colno}") from None
    except ValueError:  # the only other: an int past sys.get_int_max_str_digits()
        raise InvalidJSONError("the JSON holds a number with too many digits") from None
    _check_shape(value, max_depth)
    return value


def _refuse_constant(name: str) -> Any:
    raise InvalidJSONError(f"{name} is not JSON (RFC 8259 6)")


def _check_shape(value: Any, max_depth: int) -> None:
    # Iterative, so a deep value cannot overflow the stack here either.
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item) is not None:
                raise InvalidJSONError("the JSON holds a lone surrogate escape (\\ud800-\\udfff)")
        elif isinstance(item, (dict, list)):
            if depth >= max_depth:
                raise InvalidJSONError(f"the JSON is nested deeper than {max_depth} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


_SURROGATE = re.compile("[\ud800-\udfff]")

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_READ_TIMEOUT",
    "HasReceive",
    "RequestBody",
    "RequestBodyError",
    "parse_json",
    "read_body",
    "read_json",
]
