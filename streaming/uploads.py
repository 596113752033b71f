"""Layer 3: uploads, the request-side twin of ``FileResponse``.

``UploadSink(target).receive(chunks)`` streams a body into a temporary file
next to ``target`` (same directory, so the final rename stays on one file
system and is atomic, POSIX ``rename(2)``), hashes it with sha256 on the way,
flushes it to disk and renames it into place. Whatever stops it first (the
client leaving, a size limit, a timeout, an error in the code around it,
cancellation), the partial file is removed: a reader of ``target`` sees the
old file or the whole new one, never a part.

Feed it a ``RequestBody`` (``streaming.request_body``), which enforces the
size limit (413, a ``Content-Length`` over it refused unread), the idle and
total timeouts (408) and reports a client that left; or any async iterable of
bytes, such as a part of ``multipart_parts``.

``multipart_parts(chunks, content_type)`` reads ``multipart/form-data`` as it
arrives with python-multipart's push parser (Starlette's own dependency, the
``uploads`` extra): each part is an async iterable of its data chunks, so a
file part goes to disk chunk by chunk and is never held whole in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

from streaming.exceptions import MultipartError, StreamingConfigError


@dataclass(frozen=True, slots=True)
class UploadResult:
    """A finished upload: where it is, how many bytes, their sha256 (hex)."""

    path: Path
    size: int
    sha256: str


class UploadSink:
    """Write one upload to ``target`` atomically, hashing it on the way.

    ``overwrite=False`` refuses to replace an existing file (``FileExistsError``
    at the end, the partial file removed). ``on_progress(received)`` is called
    after each chunk is written (for a progress bar). ``fsync=True`` (the
    default) flushes the data before the rename, so a crash cannot leave a
    renamed but empty file.
    """

    def __init__(self, target: str | os.PathLike[str], *, overwrite: bool = True,
                 fsync: bool = True,
                 on_progress: Callable[[int], object] | None = None) -> None:
        self.target = Path(target)
        if self.target.name in ("", ".", ".."):
            raise StreamingConfigError(f"upload target {target!r} is not a file path")
        self.overwrite = overwrite
        self.fsync = fsync
        self.on_progress = on_progress
        self.received = 0
        #: The temporary file while an upload runs (for tests and diagnostics).
        self.partial: Path | None = None

    async def receive(self, chunks: AsyncIterable[bytes]) -> UploadResult:
        """Consume ``chunks`` into the target; remove the partial file on any
        exception or cancellation, which then propagates unchanged."""
        fd, name = await anyio.to_thread.run_sync(self._create)
        self.partial = Path(name)
        digest = hashlib.sha256()
        try:
            async for chunk in chunks:
                await anyio.to_thread.run_sync(_write_all, fd, chunk, digest)
                self.received += len(chunk)
                if self.on_progress is not None:
                    self.on_progress(self.received)
            await anyio.to_thread.run_sync(self._finish, fd, name)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_discard, fd, name)
            raise
        finally:
            self.partial = None
        return UploadResult(self.target, self.received, digest.hexdigest())

    def _create(self) -> tuple[int, str]:
        # A hidden name in the target's own directory: same file system, so
        # the rename is atomic, and no other upload can pick the same name.
        return tempfile.mkstemp(dir=self.target.parent, prefix=f".{self.target.name}.",
                                suffix=".part")

    def _finish(self, fd: int, name: str) -> None:
        if self.fsync:
            os.fsync(fd)
        os.close(fd)
        if self.overwrite:
            os.replace(name, self.target)
        else:
            os.link(name, self.target)  # fails if the target exists: never replaced
            os.unlink(name)


def _write_all(fd: int, chunk: bytes, digest: hashlib._Hash) -> None:
    digest.update(chunk)  # hashlib releases the GIL for large inputs
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view):]


def _discard(fd: int, name: str) -> None:
    with contextlib.suppress(OSError):  # already closed by _finish
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):  # already renamed into place
        os.unlink(name)


# -- multipart/form-data -----------------------------------------------------------


@dataclass(slots=True)
class Part:
    """One part of a ``multipart/form-data`` body (RFC 7578): its form field
    ``name``, the ``filename`` if it is a file, its ``content_type`` and raw
    ``headers``. Iterate over it for its data, chunk by chunk; a part not
    read to its end is skipped when the next part is asked for."""

    name: str
    filename: str | None
    content_type: str | None
    headers: dict[str, str]
    _events: _Events

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events.data()

    async def read(self, max_size: int = 64 * 1024) -> bytes:
        """The whole part, for small fields; ``MultipartError`` past ``max_size``."""
        data = bytearray()
        async for chunk in self:
            data += chunk
            if len(data) > max_size:
                raise MultipartError(f"form field {self.name!r} is larger than {max_size} bytes")
        return bytes(data)


class _Events:
    """Parser events in arrival order: ("begin", headers), ("data", bytes), ("end", None).

    python-multipart's parser is push-style and calls back synchronously for
    each ``write``; the events of one body chunk are queued here and handed
    out before the next chunk is read, so at most one chunk's worth is held."""

    def __init__(self, chunks: AsyncIterable[bytes], boundary: bytes) -> None:
        from python_multipart.multipart import MultipartParser

        self._chunks = chunks.__aiter__()
        self._queue: list[tuple[str, object]] = []
        self._header_name = b""
        self._headers: dict[str, str] = {}
        self._done = False
        self.in_part = False
        self._parser = MultipartParser(boundary, callbacks={
            "on_part_begin": self._on_part_begin,
            "on_part_data": self._on_part_data,
            "on_part_end": lambda: self._queue.append(("end", None)),
            "on_header_field": self._on_header_field,  # bounded by the parser itself
            "on_header_value": self._on_header_value,
            "on_headers_finished": lambda: self._queue.append(("begin", self._headers)),
            "on_end": self._on_end,
        })

    def _on_part_begin(self) -> None:
        self._headers, self._header_name = {}, b""

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._queue.append(("data", data[start:end]))

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        name = self._header_name.decode("latin-1").lower()
        value = data[start:end].decode("latin-1")
        self._headers[name] = self._headers.get(name, "") + value
        self._header_name = b""

    def _on_end(self) -> None:
        self._done = True

    async def next_event(self) -> tuple[str, object] | None:
        while not self._queue:
            if self._done:
                return None
            chunk = await anext(self._chunks, None)
            if chunk is None:
                raise MultipartError("the multipart body ended before its closing boundary")
            try:
                self._parser.write(chunk)
            except MultipartError:
                raise
            except Exception as exc:  # python-multipart's own parse errors
                raise MultipartError(f"malformed multipart body: {exc}") from None
        return self._queue.pop(0)

    async def data(self) -> AsyncIterator[bytes]:
        while self.in_part:
            event = await self.next_event()
            if event is None or event[0] == "end":
                self.in_part = False
                return
            if event[0] == "data" and event[1]:
                yield event[1]  # type: ignore[misc]

    async def parts(self) -> AsyncIterator[Part]:
        while True:
            event = await self.next_event()
            if event is None:
                return
            if event[0] != "begin":  # data of a part its reader left unfinished
                continue
            headers: dict[str, str] = event[1]  # type: ignore[assignment]
            disposition = _parse_disposition(headers.get("content-disposition", ""))
            if "name" not in disposition:
                raise MultipartError("a form-data part has no name (RFC 7578 4.2)")
            self.in_part = True
            yield Part(disposition["name"], disposition.get("filename"),
                       headers.get("content-type"), headers, self)


def multipart_parts(chunks: AsyncIterable[bytes], content_type: str) -> AsyncIterator[Part]:
    """The parts of a ``multipart/form-data`` body, as they arrive.

    ``content_type`` is the request's ``Content-Type`` (its ``boundary``
    parameter frames the parts). ``MultipartError`` (a 400) for a missing
    boundary, malformed framing, part headers over python-multipart's limits
    (8 headers of at most 4,224 bytes each), or a body cut before the closing
    boundary. Memory: one body chunk and one part's headers."""
    media_type, params = _parse_params(content_type)
    if media_type != "multipart/form-data" or not params.get("boundary"):
        raise MultipartError(f"not multipart/form-data with a boundary: {content_type[:100]!r}")
    return _Events(chunks, params["boundary"].encode("latin-1")).parts()


def _parse_params(value: str) -> tuple[str, dict[str, str]]:
    from python_multipart.multipart import parse_options_header

    media_type, raw = parse_options_header(value)
    return (media_type.decode("latin-1").lower(),
            {k.decode("latin-1").lower(): _text(v) for k, v in raw.items()})


def _text(value: bytes) -> str:
    # Browsers send a file name as raw UTF-8 inside the quotes (RFC 7578 4.2
    # forbids filename*, WHATWG's form encoding does this); anything else as latin-1.
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _parse_disposition(value: str) -> dict[str, str]:
    kind, params = _parse_params(value)
    return params if kind == "form-data" else {}
