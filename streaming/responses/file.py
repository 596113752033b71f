"""Layer 3: ``FileResponse``, a file served through the driver with ranges.

The signature is Starlette's (``from starlette.responses import FileResponse``
ports by changing the import). What to answer is decided by the pure
``streaming.encoders.ranges.decide`` (RFC 9110 13 and 14); this module only
carries it out: open the file, read it in chunks off the event loop, and hand
the chunks to the driver as pre-encoded bytes, which pass through every format.

Where it deliberately differs from ``starlette.responses.FileResponse`` (the
README's "Files and uploads" has the table with the RFC clauses):

- an unknown range unit or a malformed ``Range`` is ignored (200), not a 400;
- ``If-None-Match`` / ``If-Modified-Since`` answer 304, ``If-Match`` /
  ``If-Unmodified-Since`` 412;
- an unsatisfiable member of a range set is dropped while another one is
  satisfiable; near ranges are coalesced; parts keep the requested order;
- HEAD answers the headers of a GET without a Range (14.2: ranges are for GET);
- a client that leaves is noticed through the driver on every ASGI version;
- a file rewritten or truncated during the download ends the response cut.

How a change is detected: the file is opened once and every header (length,
``ETag``, ``Last-Modified``) comes from ``fstat`` of that descriptor. After
every chunk is read, the same worker-thread call ``fstat``s it again: a
different size or modification time, or a short read, raises
``FileChangedError`` before that chunk is sent, so the client gets only bytes
read while the file was the version its ``ETag`` names, and then a cut body.
A file replaced by a rename is not a change for the open descriptor: the old
version is served whole, consistently.
"""

from __future__ import annotations

import mimetypes
import os
import secrets
import stat
from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote

import anyio

from streaming._types import BackgroundTask, OutcomeCallback, RawHeaders, Receive, Scope, Send
from streaming.driver import Driver, ServerSend
from streaming.encoders.ranges import (
    ByteRange,
    Decision,
    Status,
    decide,
    file_etag,
    http_date,
    multipart_heads,
    multipart_length,
)
from streaming.exceptions import (
    FileChangedError,
    FileResponseError,
    ResponseReusedError,
    StreamingConfigError,
    UnsupportedScopeError,
)
from streaming.responses.headers import ResponseHeaders, encode_header, send_for_http_version
from streaming.responses.stream import StreamingResponse

#: Headers a 304 keeps (RFC 9110 15.4.5): the ones that update a cached copy.
_NOT_MODIFIED_KEEP = frozenset({b"cache-control", b"content-location", b"date", b"etag",
                                b"expires", b"vary"})

#: Headers this response derives from the file; the caller's own win.
_STAT_HEADERS = (b"content-length", b"last-modified", b"etag")

_EMPTY_TEXT = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"0")]

#: Bytes per ``http.response.zerocopysend``: the file is checked for changes
#: between slices, so a change cuts the body within this many bytes.
ZERO_COPY_SLICE = 8 * 1024 * 1024

_ZEROCOPY, _PATHSEND = "http.response.zerocopysend", "http.response.pathsend"


class FileResponse(StreamingResponse):
    """Serve the file at ``path``, with ranges, conditional requests and HEAD.

    The positional signature is Starlette's; the keyword-only arguments after
    ``*`` are ours. ``stat_result`` fills the headers at construction (as in
    Starlette); they are refreshed from the opened file when the response runs.
    ``method="HEAD"`` sends headers only, whatever the request's method.
    """

    #: Bytes per read: four times Starlette's 64 KiB: each read is a worker-thread round trip
    #: (see benchmarks/files.py); memory per download stays about one chunk.
    chunk_size = 256 * 1024

    def __init__(
        self,
        path: str | os.PathLike[str],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
        filename: str | None = None,
        stat_result: os.stat_result | None = None,
        method: str | None = None,
        content_disposition_type: str = "attachment",
        *,
        chunk_size: int | None = None,
        zero_copy: bool = True,
        commit_deadline: float | None = 1.0,
        cleanup_timeout: float = 5.0,
        send_timeout: float | None = None,
        on_outcome: OutcomeCallback | None = None,
    ) -> None:
        if media_type is None:
            media_type = mimetypes.guess_type(filename or os.fspath(path))[0]
        super().__init__((), status_code, headers, media_type or "application/octet-stream",
                         background, commit_deadline=commit_deadline,
                         cleanup_timeout=cleanup_timeout, send_timeout=send_timeout,
                         on_outcome=on_outcome)
        self.path = path
        self._absolute_path = os.path.abspath(path)  # what pathsend names
        self.filename = filename
        self.zero_copy = zero_copy
        self.send_header_only = method is not None and method.upper() == "HEAD"
        if chunk_size is not None:
            if type(chunk_size) is not int or chunk_size <= 0:
                raise StreamingConfigError(f"chunk_size must be a positive int, not {chunk_size!r}")
            self.chunk_size = chunk_size
        self._own = {name for name, _ in self.raw_headers}  # the caller's headers
        self._set_default(b"accept-ranges", b"bytes")
        if filename is not None:
            self._set_default(*encode_header("content-disposition",
                                             content_disposition(content_disposition_type,
                                                                 filename)))
        self.stat_result = stat_result
        if stat_result is not None:
            self._set_stat_headers(stat_result)

    def _set_default(self, name: bytes, value: bytes) -> None:
        if not any(k == name for k, _ in self.raw_headers):
            self.raw_headers.append((name, value))

    def _set_stat_headers(self, st: os.stat_result) -> None:
        values = (str(st.st_size), http_date(st.st_mtime), _etag(st))
        ours = dict(zip(_STAT_HEADERS, (v.encode("latin-1") for v in values), strict=True))
        self.raw_headers[:] = [(k, v) for k, v in self.raw_headers
                               if k in self._own or k not in ours]
        for name, value in ours.items():
            if name not in self._own:
                self.raw_headers.append((name, value))

    # -- ASGI ------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise UnsupportedScopeError(f"{type(self).__name__} serves HTTP, not {scope['type']!r}")
        if self._called:
            raise ResponseReusedError(f"this {type(self).__name__} has already been sent")
        self._called = True
        fd, st, prefetched = await anyio.to_thread.run_sync(
            _open_regular_file, self.path, self._prefetch(scope))
        try:
            self._set_stat_headers(st)
            method = "HEAD" if self.send_header_only else str(scope.get("method", "GET"))
            decision = decide(method, request_headers(scope), st.st_size, _etag(st),
                              st.st_mtime, status=self.status_code)
            body_source = _FileBody(fd, st, self.chunk_size, self._server_send(scope, decision),
                                    self._absolute_path, prefetched)
            status, headers, body = self._plan(decision, st, body_source)
            driver = Driver(receive, send_for_http_version(send, scope), self.format, status,
                            headers, self.policy)
            head = method.upper() == "HEAD"
            outcome = await self._observed(
                scope, driver, lambda: driver.run_head(()) if head else driver.run(body))
        finally:
            os.close(fd)  # the body generator is closed by the driver before this
        await self._finish(outcome)

    def _prefetch(self, scope: Scope) -> int:
        """How many bytes to read with the open, in the same worker-thread call:
        a chunk for a plain GET that will read the file from its start (a
        small file then costs one thread round trip, not two), else none.
        A file that fits in it is sent as bytes even where zero-copy is
        offered: one body message costs the server less than a sendfile."""
        if self.send_header_only or scope.get("method") != "GET":
            return 0
        if any(name == b"range" for name, _ in scope.get("headers", ())):
            return 0
        return self.chunk_size

    def _server_send(self, scope: Scope, decision: Decision) -> str | None:
        """The zero-copy extension to use, if the server offers one: zerocopysend
        for anything (it takes an offset and a count), else pathsend for a whole
        file (it takes a path only). HEAD and fixed answers send no file."""
        extensions = scope.get("extensions") or {}
        if not self.zero_copy:
            return None
        if _ZEROCOPY in extensions:
            return _ZEROCOPY
        if _PATHSEND in extensions and decision.status is Status.OK:
            return _PATHSEND
        return None

    def _plan(self, decision: Decision, st: os.stat_result, fd_body: _FileBody,
              ) -> tuple[int, RawHeaders, AsyncIterator[bytes | ServerSend]]:
        """The status, headers and body source that carry out ``decision``."""
        if decision.status is Status.OK:
            return self.status_code, self.raw_headers, fd_body.whole()
        if decision.status is Status.PARTIAL_CONTENT:
            return self._partial(decision.ranges, st.st_size, fd_body)
        if decision.status is Status.NOT_MODIFIED:
            kept = [(k, v) for k, v in self.raw_headers if k in _NOT_MODIFIED_KEEP]
            return 304, kept, _nothing()
        if decision.status is Status.RANGE_NOT_SATISFIABLE:
            headers = [(b"content-range", f"bytes */{st.st_size}".encode()), *_EMPTY_TEXT]
            return 416, headers, _nothing()
        return 412, list(_EMPTY_TEXT), _nothing()

    def _partial(self, ranges: tuple[ByteRange, ...], size: int, body: _FileBody,
                 ) -> tuple[int, RawHeaders, AsyncIterator[bytes | ServerSend]]:
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        if len(ranges) == 1:
            only = ranges[0]
            headers += [(b"content-range", only.content_range(size).encode()),
                        (b"content-length", str(only.length).encode())]
            return 206, headers, body.ranges(ranges, [b""], b"")
        # 95 bits of randomness, as browsers use for form boundaries: a boundary
        # must not occur in the data (RFC 2046 5.1.1).
        boundary = secrets.token_hex(12)
        content_type = ResponseHeaders(self.raw_headers).get("content-type", "")
        heads, closing = multipart_heads(ranges, size, content_type, boundary)
        headers = [(k, v) for k, v in headers if k != b"content-type"]
        headers += [
            (b"content-type", f"multipart/byteranges; boundary={boundary}".encode()),
            (b"content-length", str(multipart_length(ranges, heads, closing)).encode()),
        ]
        return 206, headers, body.ranges(ranges, heads, closing)


class _FileBody:
    """The body's pieces: chunks read from the open descriptor in worker
    threads, or, where the server offers it, ``ServerSend`` messages that let
    the server send from the file itself (``sendfile``)."""

    def __init__(self, fd: int, st: os.stat_result, chunk_size: int,
                 server_send: str | None, path: str, head: bytes = b"") -> None:
        self.fd = fd
        self.version = (st.st_size, st.st_mtime_ns)
        self.identity = (st.st_dev, st.st_ino)
        self.chunk_size = chunk_size
        self.server_send = server_send
        self.path = path
        self.head = head  # the file's first bytes, read with the open

    async def whole(self) -> AsyncIterator[bytes | ServerSend]:
        if len(self.head) == self.version[0]:  # the whole file came with the open
            if self.head:
                yield self.head
            return
        if self.server_send == _PATHSEND and await anyio.to_thread.run_sync(self._path_is_ours):
            yield ServerSend({"type": _PATHSEND, "path": self.path}, self.version[0],
                             ends_body=True)
            return
        if self.head:
            yield self.head
        async for piece in self.pieces([ByteRange(len(self.head), self.version[0] - 1)]):
            yield piece

    def _path_is_ours(self) -> bool:
        # pathsend makes the server open the path again: only if it still
        # names the very file (and version) the headers describe. A small
        # window remains between this check and the server's open.
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return ((st.st_dev, st.st_ino) == self.identity
                and (st.st_size, st.st_mtime_ns) == self.version)

    def ranges(self, ranges: tuple[ByteRange, ...], heads: list[bytes],
               closing: bytes) -> AsyncIterator[bytes | ServerSend]:
        if len(ranges) == 1:
            return self.pieces(list(ranges))
        pieces: list[bytes | ByteRange] = []
        for head, byte_range in zip(heads, ranges, strict=True):
            pieces += [head, byte_range, b"\r\n"]
        return self.pieces([*pieces, closing])

    async def pieces(self, pieces: list[bytes | ByteRange]) -> AsyncIterator[bytes | ServerSend]:
        """Yield each piece: bytes as they are, a range read in chunks (or
        sent by the server in slices, checked for changes between them)."""
        for piece in pieces:
            if isinstance(piece, bytes):
                yield piece
            elif self.server_send == _ZEROCOPY:
                async for message in self._zero_copy(piece):
                    yield message
            else:
                async for chunk in self._read(piece):
                    yield chunk

    async def _read(self, piece: ByteRange) -> AsyncIterator[bytes]:
        offset, end = piece.first, piece.last + 1
        while offset < end:
            chunk = await anyio.to_thread.run_sync(
                _read_unchanged, self.fd, min(self.chunk_size, end - offset), offset,
                self.version)
            # A read cannot be cancelled once in its thread: if the client
            # left meanwhile, stop here rather than yield a late chunk.
            await anyio.lowlevel.checkpoint_if_cancelled()
            offset += len(chunk)
            yield chunk

    async def _zero_copy(self, piece: ByteRange) -> AsyncIterator[ServerSend]:
        file = _Descriptor(self.fd)
        offset, end = piece.first, piece.last + 1
        while offset < end:
            count = min(ZERO_COPY_SLICE, end - offset)
            yield ServerSend({"type": _ZEROCOPY, "file": file, "offset": offset,
                              "count": count, "more_body": True}, count)
            _check_unchanged(self.fd, self.version)  # an fstat: no need for a thread
            offset += count


class _Descriptor:
    """What ``http.response.zerocopysend`` wants: an object with ``fileno()``.
    The descriptor stays ours: the response closes it, the server does not."""

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd


def _check_unchanged(fd: int, version: tuple[int, int]) -> None:
    st = os.fstat(fd)
    if (st.st_size, st.st_mtime_ns) != version:
        raise FileChangedError(
            f"the file changed during the download (size {version[0]} -> {st.st_size}); "
            "the response was cut")


def _read_unchanged(fd: int, count: int, offset: int, version: tuple[int, int]) -> bytes:
    """Read ``count`` bytes at ``offset`` and check, after the read, that the
    file is still the version the headers describe (see the module docstring)."""
    chunk = os.pread(fd, count, offset)
    _check_unchanged(fd, version)
    if len(chunk) != count:
        raise FileChangedError(f"the file is shorter than {version[0]} bytes now; "
                               "the response was cut")
    return chunk


async def _nothing() -> AsyncIterator[bytes | ServerSend]:
    return
    yield  # pragma: no cover (makes this an async generator)


def _open_regular_file(path: str | os.PathLike[str], prefetch: int,
                       ) -> tuple[int, os.stat_result, bytes]:
    """Open ``path`` (a regular file, else ``FileResponseError``), ``fstat``
    it, and read its first ``prefetch`` bytes: one worker-thread call."""
    # O_NONBLOCK: opening a FIFO with no writer would otherwise block this
    # worker thread for ever; it changes nothing for a regular file, and
    # anything else is refused below before a byte is read.
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileResponseError(f"File at path {os.fspath(path)!r} does not exist.") from None
    except IsADirectoryError:
        raise FileResponseError(f"File at path {os.fspath(path)!r} is not a file.") from None
    except PermissionError:
        raise FileResponseError(f"File at path {os.fspath(path)!r} is not readable.") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FileResponseError(f"File at path {os.fspath(path)!r} is not a file.")
    head = b""
    if prefetch:
        head = os.pread(fd, min(prefetch, st.st_size), 0)
        after = os.fstat(fd)  # as _read_unchanged: the bytes are of the fstat's version
        if len(head) != min(prefetch, st.st_size) or (
                (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns)):
            os.close(fd)
            raise FileChangedError(f"the file at {os.fspath(path)!r} changed while it was opened")
    return fd, st, head


def _etag(st: os.stat_result) -> str:
    return file_etag(st.st_size, st.st_mtime_ns, st.st_ino)


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name; repeated fields joined with
    ``", "`` (RFC 9110 5.3), so a repeated singleton such as ``Range`` becomes
    invalid syntax and is ignored, as it should be."""
    joined: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        joined[key] = f"{joined[key]}, {text}" if key in joined else text
    return joined


def content_disposition(disposition_type: str, filename: str) -> str:
    """``Content-Disposition`` for ``filename`` (RFC 6266 4.3): a plain quoted
    ``filename`` when it is printable ASCII without quotes or backslashes;
    otherwise an ASCII fallback plus ``filename*`` in RFC 8187 (5987) encoding."""
    plain = filename.isascii() and filename.isprintable() and not set(filename) & {'"', "\\"}
    if plain:
        return f'{disposition_type}; filename="{filename}"'
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in filename)
    encoded = quote(filename, safe="!#$&+-.^_`|~")
    return f"{disposition_type}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
