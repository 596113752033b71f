"""See a live server's chunked framing, which curl and httpx hide.

An HTTP/1.1 response whose length is unknown is framed as chunks (RFC 9112
section 7.1): each chunk is a hexadecimal size line, that many bytes and CRLF;
a ``0`` size line (the last chunk), optional trailer fields and an empty line
end the body. A connection that closes before the last chunk is a cut stream,
and this framing is the only way a client can tell.

Two halves, as in h11:

* ``WireDecoder``: sans-IO. ``feed(bytes)`` returns the events completed so
  far: the response head, each chunk with its size line exactly as sent, the
  last chunk, or the body of a response that is not chunked. No sockets, so it
  is tested with table tests.
* ``watch(url)``: a small anyio client that sends one ``GET`` and prints each
  event with its arrival time (``python -m streaming wire URL``). Plain
  ``http://`` only: under TLS the framing is the same but needs a TLS stack.

Everything printed that came from the network goes through ``terminal_safe``
first: a status line, header or trailer holding ESC or a bare CR could
otherwise clear the screen, retitle the window or overwrite a line shown above.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import quote, urlsplit

import anyio
import anyio.abc

from streaming.exceptions import StreamingConfigError, WireFormatError
from streaming.responses.headers import encode_header
from streaming.tracing.terminal import terminal_safe

#: Bounds on what the decoder holds while waiting for a line or a chunk to
#: complete, so a broken or hostile server cannot make the viewer grow forever.
MAX_LINE = 8 * 1024
MAX_HEAD = 64 * 1024
MAX_CHUNK = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """The status line and header fields, names lower-cased, in wire order."""

    status_line: str
    status: int
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk: its size line exactly as sent (hex digits and any chunk
    extension, without CRLF) and its data."""

    size_line: bytes
    data: bytes


@dataclass(frozen=True, slots=True)
class LastChunk:
    """The ``0`` chunk and any trailer fields: the body is complete."""

    size_line: bytes
    trailers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class BodyData:
    """Bytes of a body that is not chunked (``Content-Length`` or read until
    the connection closes), as they arrived."""

    data: bytes


@dataclass(frozen=True, slots=True)
class BodyEnd:
    """The end of the body. ``complete`` is False for a cut stream: the
    connection closed before the last chunk or before ``Content-Length`` bytes."""

    complete: bool
    reason: str


WireEvent = ResponseHead | Chunk | LastChunk | BodyData | BodyEnd

_HEAD, _SIZE, _DATA, _TRAILERS, _LENGTH, _UNTIL_CLOSE, _NO_BODY, _DONE = range(8)


class WireDecoder:
    """Decode one HTTP/1.1 response from the bytes a client receives.

    ``feed()`` as data arrives; ``close()`` when the connection ends (it
    reports whether the body was whole). ``request_method`` matters because a
    response to ``HEAD`` has no body whatever its headers say (RFC 9110 9.3.2).
    """

    def __init__(self, request_method: str = "GET") -> None:
        self._method = request_method.upper()
        self._buffer = bytearray()
        self._state = _HEAD
        self._size_line = b""
        self._remaining = 0

    @property
    def done(self) -> bool:
        """True once the body has ended (last chunk, full length, or no body)."""
        return self._state == _DONE

    def feed(self, data: bytes) -> list[WireEvent]:
        """Add received bytes; return the events they completed, in order.

        A ``WireFormatError`` carries, in ``events``, what these bytes completed
        before the error, so a viewer can still show it. The decoder is then
        done: later bytes are not decoded."""
        self._buffer += data
        events: list[WireEvent] = []
        try:
            while self._state != _DONE:
                event = self._next_event()
                if event is None:
                    break
                events.append(event)
        except WireFormatError as error:
            self._state = _DONE
            error.events = tuple(events)
            raise
        return events

    def close(self) -> list[WireEvent]:
        """The connection closed: return the final ``BodyEnd`` (if not sent yet)."""
        if self._state == _DONE:
            return []
        self._state, state = _DONE, self._state
        if state == _UNTIL_CLOSE:
            return [BodyEnd(True, "connection closed (end of a close-delimited body)")]
        if state == _HEAD:
            return [BodyEnd(False, "connection closed before a complete response head")]
        if state == _LENGTH:
            return [BodyEnd(False, f"connection closed {self._remaining} B short of "
                                   "Content-Length (stream cut)")]
        return [BodyEnd(False, "connection closed without terminating chunk (stream cut)")]

    # -- one step per state ---------------------------------------------------

    def _next_event(self) -> WireEvent | None:
        if self._state == _HEAD:
            return self._read_head()
        if self._state == _SIZE:
            return self._read_size_line()
        if self._state == _DATA:
            return self._read_chunk_data()
        if self._state == _TRAILERS:
            return self._read_trailers()
        return self._read_plain_body()

    def _read_head(self) -> ResponseHead | None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD:
                raise WireFormatError(f"response head longer than {MAX_HEAD} bytes")
            return None
        lines = bytes(self._buffer[:end]).split(b"\r\n")
        del self._buffer[: end + 4]
        head = _parse_head(lines)
        self._state = self._body_state(head)
        return head

    def _body_state(self, head: ResponseHead) -> int:
        # RFC 9112 section 6.3: how the length of a response body is determined.
        if 100 <= head.status < 200 and head.status != 101:
            return _HEAD  # an interim response; the final head follows
        if self._method == "HEAD" or head.status in (204, 304):
            return _NO_BODY
        fields = dict(head.headers)
        codings = fields.get("transfer-encoding", "").lower()
        if codings.rsplit(",", 1)[-1].strip() == "chunked":
            return _SIZE
        if "content-length" in fields:
            self._remaining = _parse_length(fields["content-length"])
            return _LENGTH
        return _UNTIL_CLOSE

    def _read_size_line(self) -> Chunk | LastChunk | None:
        line = self._take_line()
        if line is None:
            return None
        size = _parse_size(line)
        if size > MAX_CHUNK:
            raise WireFormatError(f"chunk of {size} bytes is larger than this viewer holds")
        self._size_line, self._remaining = line, size
        self._state = _DATA if size else _TRAILERS
        return self._read_chunk_data() if size else self._read_trailers()

    def _read_chunk_data(self) -> Chunk | None:
        needed = self._remaining + 2
        if len(self._buffer) < needed:
            return None
        if self._buffer[self._remaining : needed] != b"\r\n":
            raise WireFormatError(f"chunk data not followed by CRLF after {self._remaining} B")
        data = bytes(self._buffer[: self._remaining])
        del self._buffer[:needed]
        self._state = _SIZE
        return Chunk(self._size_line, data)

    def _read_trailers(self) -> LastChunk | None:
        # The trailer section ends with an empty line; usually it is only that.
        if self._buffer.startswith(b"\r\n"):
            end = 0
        else:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    raise WireFormatError(f"trailer section longer than {MAX_HEAD} bytes")
                return None
        fields = _parse_fields(bytes(self._buffer[:end]).split(b"\r\n")) if end else ()
        del self._buffer[: end + (2 if end == 0 else 4)]
        self._state = _DONE
        return LastChunk(self._size_line, fields)

    def _read_plain_body(self) -> BodyData | BodyEnd | None:
        if self._state == _NO_BODY:
            self._state = _DONE
            return BodyEnd(True, "no body (a response to HEAD, or status 204 or 304)")
        if self._state == _LENGTH and self._remaining == 0:
            self._state = _DONE
            return BodyEnd(True, "Content-Length reached")
        if not self._buffer:
            return None
        take = len(self._buffer) if self._state == _UNTIL_CLOSE else self._remaining
        data = bytes(self._buffer[:take])
        del self._buffer[:take]
        if self._state == _LENGTH:
            self._remaining -= len(data)
        return BodyData(data)

    def _take_line(self) -> bytes | None:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > MAX_LINE:
                raise WireFormatError(f"line longer than {MAX_LINE} bytes")
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line


#: RFC 9112 4: HTTP-version SP 3DIGIT SP [ reason-phrase ]. ASCII digits only:
#: ``str.isdigit`` also takes "²", which ``int()`` then refuses.
_STATUS_LINE = re.compile(rb"HTTP/1\.[0-9] ([0-9]{3})(?: .*)?", re.DOTALL)
_DIGITS = re.compile(r"[0-9]{1,18}")


def _parse_head(lines: list[bytes]) -> ResponseHead:
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        raise WireFormatError(f"not an HTTP/1.x status line: {lines[0]!r}")
    return ResponseHead(lines[0].decode("latin-1"), int(match[1]), _parse_fields(lines[1:]))


def _parse_fields(lines: Sequence[bytes]) -> tuple[tuple[str, str], ...]:
    fields = []
    for line in lines:
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not name or name != name.strip():
            raise WireFormatError(f"malformed header field line: {line!r}")
        fields.append((name.lower(), value.strip()))
    return tuple(fields)


def _parse_length(text: str) -> int:
    # RFC 9110 8.6: 1*DIGIT; more than 18 digits is no length this viewer reads.
    if _DIGITS.fullmatch(text) is None:
        raise WireFormatError(f"invalid Content-Length: {text!r}")
    return int(text)


_HEX = frozenset(b"0123456789abcdefABCDEF")


def _parse_size(line: bytes) -> int:
    """``chunk-size [ chunk-ext ]`` (RFC 9112 section 7.1.1); extensions are kept
    in the size line for display and otherwise ignored, as the RFC asks."""
    digits = line.split(b";", 1)[0].rstrip(b" \t")
    if not digits or not all(byte in _HEX for byte in digits):
        raise WireFormatError(f"invalid chunk size line: {line!r}")
    return int(digits, 16)


# -- the client: I/O glue around the decoder ------------------------------------


@dataclass(frozen=True, slots=True)
class WatchResult:
    """What ``watch`` saw: the status (``None`` without a head), how many data
    chunks arrived, and whether the body was whole."""

    status: int | None
    chunks: int
    complete: bool


def format_event(ms: float, event: WireEvent, preview: int = 40) -> str:
    """One event as the wire view prints it: arrival time in ms, then details."""
    stamp = f"{ms:9.1f}"
    pad = " " * len(stamp)
    safe = terminal_safe
    if isinstance(event, ResponseHead):
        fields = [f"{pad}  {safe(name)}: {safe(value)}" for name, value in event.headers]
        return "\n".join([f"{stamp}  {safe(event.status_line)}", *fields])
    if isinstance(event, Chunk):
        size = event.size_line.decode("latin-1")
        return (f"{stamp}  chunk  size line {size!r:<8} {len(event.data):6d} B"
                f"  {_preview(event.data, preview)}")
    if isinstance(event, LastChunk):
        size = event.size_line.decode("latin-1")
        trailers = "".join(f"\n{pad}  trailer {safe(name)}: {safe(value)}"
                           for name, value in event.trailers)
        return f"{stamp}  last chunk  size line {size!r}  (body complete){trailers}"
    if isinstance(event, BodyData):
        length = len(event.data)
        return f"{stamp}  data (not chunked) {length:6d} B  {_preview(event.data, preview)}"
    return f"{stamp}  {safe(event.reason)}"


def _preview(data: bytes, limit: int) -> str:
    text = data[:limit].decode("utf-8", errors="replace")
    return repr(text) + ("..." if len(data) > limit else "")


#: What may stay as it is in a request target (RFC 3986 pchar and query, with
#: "%" so an escape already there is kept); everything else is percent-encoded
#: as a browser does, so a space or a non-ASCII letter cannot break the line.
_TARGET_SAFE = "/?:@!$&'()*+,;=%-._~"


def request_target(url: str) -> str:
    """The origin-form request target of ``url``: path and query (RFC 9112 3.2.1)."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return quote(target, safe=_TARGET_SAFE)


def request_bytes(url: str, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """The ``GET`` request sent for ``url``. ``Accept-Encoding: identity`` keeps
    the body readable; ``Connection: close`` lets a close-delimited body end.
    A header that cannot go on the wire (a CR or LF in it, not latin-1) is a
    ``HeaderValidationError``, never sent raw."""
    parts = urlsplit(url)
    if not parts.netloc or not parts.netloc.isascii() or not parts.netloc.isprintable() \
            or " " in parts.netloc:
        raise StreamingConfigError(f"not a host[:port] the wire view can send: {parts.netloc!r}")
    fields = [("Host", parts.netloc), ("User-Agent", "streaming-wire"), ("Accept", "*/*"),
              ("Accept-Encoding", "identity"), ("Connection", "close"), *headers]
    lines = [b"GET %s HTTP/1.1" % request_target(url).encode("ascii")]
    for name, value in fields:
        _, encoded = encode_header(name, value)  # checked; the name keeps its case
        lines.append(name.encode("ascii") + b": " + encoded)
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def watch(url: str, out: TextIO | None = None, *, give_up_after: float = 60.0,
                preview: int = 40, headers: Sequence[tuple[str, str]] = ()) -> WatchResult:
    """``GET url`` over a plain TCP connection and print each framing event to
    ``out`` (stdout by default) as it arrives, for at most ``give_up_after`` seconds."""
    out = sys.stdout if out is None else out
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise StreamingConfigError(f"the wire view needs an http:// URL, got {url!r}")
    if not (isinstance(give_up_after, (int, float)) and math.isfinite(give_up_after)
            and give_up_after > 0):
        raise StreamingConfigError(f"give_up_after must be a finite number > 0, "
                                   f"not {give_up_after!r}")
    if type(preview) is not int or preview < 0:
        raise StreamingConfigError(f"preview must be an int >= 0, not {preview!r}")
    request = request_bytes(url, headers)  # refuses bad headers before connecting
    port = parts.port or 80  # ValueError for a port out of range
    watcher = _Watcher(out, preview)
    with anyio.move_on_after(give_up_after) as scope:
        stream = await anyio.connect_tcp(parts.hostname, port)
        async with stream:
            await stream.send(request)
            watcher.say(f"connected to {parts.netloc}, sent GET {request_target(url)}")
            await watcher.read_all(stream)
    if scope.cancelled_caught:
        watcher.say(f"gave up after {give_up_after:g} s (the body had not ended)")
    return watcher.result()


class _Watcher:
    """Feeds the decoder from a socket and prints what it decodes."""

    def __init__(self, out: TextIO, preview: int) -> None:
        self.out = out
        self.preview = preview
        self.decoder = WireDecoder()
        self.started = anyio.current_time()
        self.status: int | None = None
        self.chunks = 0
        self.complete = False

    async def read_all(self, stream: anyio.abc.ByteStream) -> None:
        while not self.decoder.done:
            try:
                data = await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                self.show(self.decoder.close())
                return
            try:
                events = self.decoder.feed(data)
            except WireFormatError as error:
                self.show([e for e in error.events if isinstance(e, WireEvent)])  # before it
                raise
            self.show(events)

    def show(self, events: list[WireEvent]) -> None:
        ms = (anyio.current_time() - self.started) * 1000
        for event in events:
            self._count(event)
            print(format_event(ms, event, self.preview), file=self.out, flush=True)

    def _count(self, event: WireEvent) -> None:
        if isinstance(event, ResponseHead):
            self.status = event.status
        elif isinstance(event, Chunk):
            self.chunks += 1
        elif isinstance(event, LastChunk | BodyEnd):
            self.complete = isinstance(event, LastChunk) or event.complete

    def say(self, text: str) -> None:
        ms = (anyio.current_time() - self.started) * 1000
        print(f"{ms:9.1f}  {terminal_safe(text)}", file=self.out, flush=True)

    def result(self) -> WatchResult:
        return WatchResult(self.status, self.chunks, self.complete)


__all__ = [
    "BodyData",
    "BodyEnd",
    "Chunk",
    "LastChunk",
    "ResponseHead",
    "WatchResult",
    "WireDecoder",
    "WireEvent",
    "WireFormatError",
    "format_event",
    "request_bytes",
    "request_target",
    "terminal_safe",
    "watch",
]
