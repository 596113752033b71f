"""Large files: downloads with ranges, generated downloads (CSV, ZIP), uploads.

``STREAMING_FILES_DIR=/some/dir uvicorn --factory examples.files:create_app``
serves (the directory defaults to the current one):

* ``/files/{name}``: a file of the directory through ``FileResponse`` (ranges,
  resume, conditional requests; zero-copy where the server offers it);
* ``/export.csv?rows=N``: a CSV export streamed row by row, never held whole;
* ``/bundle.zip?names=a,b``: a ZIP of those files of the directory (all of
  them without ``names``), built on the fly while it streams (no temporary
  file, constant memory);
* ``/page/video/{name}``: a ``<video>`` element playing ``/files/{name}``;
* ``PUT /upload/{name}?id=ID`` (``curl -T``): the body, streamed to disk
  through ``UploadSink`` within ``RequestBody``'s limits (413, 408);
* ``POST /upload?id=ID``: a ``multipart/form-data`` form, each file part
  streamed to disk as it arrives;
* ``/upload/{ID}/progress``: Server-Sent Events with the bytes received so
  far of upload ``ID``, then ``done`` or ``failed``;
* ``/page/upload``: pick a file, watch its progress bar fill;
* ``POST /transform``: NDJSON in, NDJSON out, one answer line per request
  line as soon as it arrives (request and response stream at once).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import zipfile
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from urllib.parse import quote

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from examples.params import QueryError, query_int
from streaming import (
    EventSourceResponse,
    FileResponse,
    NDJSONResponse,
    RequestBody,
    RequestBodyError,
    ServerSentEvent,
    StreamingResponse,
)
from streaming.driver import RequestStream
from streaming.exceptions import InvalidJSONError
from streaming.request_body import parse_json
from streaming.uploads import UploadResult, UploadSink, multipart_parts

#: Bytes a ZIP entry is read and written in; also the most the ZIP stream holds.
ZIP_CHUNK = 64 * 1024


def safe_child(root: Path, name: str) -> Path | None:
    """``root / name`` if ``name`` is one plain file name inside ``root`` (no
    separators, no ``..``, no hidden files), else ``None``: a path from the
    request never leaves the directory."""
    if not name or name.startswith(".") or "/" in name or "\\" in name or "\0" in name:
        return None
    candidate = root / name
    return candidate if candidate.is_file() else None


async def csv_rows(count: int) -> AsyncIterator[str]:
    """An export of ``count`` rows, one CSV line at a time (a database cursor
    would go here): memory stays one row, whatever ``count`` is."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180 line breaks
    writer.writerow(["id", "name", "amount"])
    for i in range(count):
        writer.writerow([i, f"customer {i}", f"{i * 1.5:.2f}"])
        if buffer.tell() >= 16 * 1024 or i == count - 1:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if count == 0:
        yield buffer.getvalue()


class _Spout(io.RawIOBase):
    """A write-only, unseekable sink: ``zipfile`` then writes data descriptors
    after each entry instead of seeking back, so the archive can stream."""

    def __init__(self) -> None:
        self.pending: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.pending.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.pending = b"".join(self.pending), []
        return data


def zip_stream(paths: list[Path]) -> Iterator[bytes]:
    """A ZIP of ``paths``, yielded as it is built. A sync generator: the
    response runs it in a worker thread, so reading and deflating never block
    the event loop. ZIP64 entries, so files over 4 GiB work too."""
    spout = _Spout()
    with zipfile.ZipFile(spout, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            info = zipfile.ZipInfo.from_file(path, arcname=path.name)
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as source, archive.open(info, "w", force_zip64=True) as entry:
                while chunk := source.read(ZIP_CHUNK):
                    entry.write(chunk)
                    if data := spout.take():
                        yield data
            yield spout.take()
    yield spout.take()  # the central directory, written on close


VIDEO_PAGE = """<!doctype html>
<meta charset="utf-8"><title>video</title>
<video id="video" controls preload="auto" src="{src}" style="max-width: 100%"></video>
"""


UPLOAD_PAGE = """<!doctype html>
<meta charset="utf-8"><title>upload</title>
<input type="file" id="file"> <button id="send">Upload</button>
<progress id="bar" value="0" max="1"></progress> <span id="status"></span>
<script>
const seen = [];
document.getElementById("send").onclick = async () => {
  const file = document.getElementById("file").files[0];
  const id = crypto.randomUUID();
  const bar = document.getElementById("bar"), status = document.getElementById("status");
  bar.max = file.size;
  const events = new EventSource(`/upload/${id}/progress`);
  events.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data); seen.push(p.received);
    if (p.total) bar.max = p.total;  // the whole form's bytes, a little over the file's
    bar.value = p.received;
  });
  events.addEventListener("done", (e) => {
    events.close(); status.textContent = "done " + JSON.parse(e.data)[0].sha256;
  });
  events.addEventListener("failed", (e) => {
    events.close(); status.textContent = "failed " + JSON.parse(e.data).status;
  });
  await new Promise((resolve) => events.addEventListener("open", resolve, {once: true}));
  const form = new FormData();
  form.append("file", file);
  await fetch(`/upload?id=${id}`, {method: "POST", body: form});
};
window.progressSeen = seen;
</script>
"""


def _attachment(filename: str) -> str:
    return f'attachment; filename="{filename}"'


#: An upload id: short and plain, so it can go in a URL and a log unescaped.
UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass
class UploadState:
    """One upload's progress, watched by its progress stream."""

    total: int | None = None
    received: int = 0
    outcome: tuple[str, object] | None = None  # set once: ("done" | "failed", data)
    changed: anyio.Event = field(default_factory=anyio.Event)

    def update(self, received: int) -> None:
        self.received = received
        self.changed.set()
        self.changed = anyio.Event()

    def finish(self, event: str, data: object) -> None:
        self.outcome = (event, data)
        self.update(self.received)


class UploadProgress:
    """Uploads by id, in this process (several workers would share them
    through the hub). Bounded: the oldest of ``limit`` entries is forgotten."""

    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self._states: OrderedDict[str, UploadState] = OrderedDict()

    def state(self, upload_id: str) -> UploadState:
        state = self._states.get(upload_id)
        if state is None:
            state = self._states[upload_id] = UploadState()
            while len(self._states) > self.limit:
                self._states.popitem(last=False)
        return state

    async def events(self, upload_id: str) -> AsyncIterator[ServerSentEvent]:
        """Progress events until the upload ends (``done`` or ``failed``)."""
        state = self.state(upload_id)
        sent = -1
        while True:
            changed = state.changed
            if state.received != sent:
                sent = state.received
                yield ServerSentEvent(json.dumps({"received": sent, "total": state.total}),
                                      event="progress")
            if state.outcome is not None:
                event, data = state.outcome
                yield ServerSentEvent(json.dumps(data), event=event)
                return
            await changed.wait()


#: The longest NDJSON line /transform accepts (a longer one is a 400 line).
MAX_LINE = 64 * 1024


async def ndjson_lines(chunks: AsyncIterator[bytes] | RequestBody) -> AsyncIterator[bytes]:
    """The lines of an NDJSON body as they complete, each at most ``MAX_LINE``
    bytes (held: one line and one chunk)."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if len(pending) > MAX_LINE:
            raise InvalidJSONError(f"a line is longer than {MAX_LINE} bytes")
        for line in lines:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


async def transformed(body: RequestBody) -> AsyncIterator[object]:
    """One answer per request line, sent before the next line is read."""
    async for line in ndjson_lines(body):
        try:
            item = parse_json(line)
        except InvalidJSONError as exc:
            yield {"error": exc.detail}
            continue
        yield {"received": item, "length": len(line)}


def safe_name(filename: str) -> str | None:
    """A file name from a client as a plain name, or ``None``: the last path
    component, no leading dot, no control characters, at most 255 bytes."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if (not name or name.startswith(".") or len(name.encode()) > 255
            or any(ord(c) < 32 or ord(c) == 127 for c in name)):
        return None
    return name


def _failed(error: BaseException) -> tuple[int, str, dict[str, str]]:
    if isinstance(error, RequestBodyError):
        return error.status_code, error.detail, error.headers
    if isinstance(error, FileExistsError):
        return 409, "that file exists already", {}
    raise error


def create_app(root: Path | None = None, *, max_upload: int = 1024**3,
               idle_timeout: float = 10.0, progress: UploadProgress | None = None,
               ) -> Starlette:
    """The app, serving ``root`` (default ``$STREAMING_FILES_DIR`` or ".").
    Uploads are refused past ``max_upload`` bytes (413) or after
    ``idle_timeout`` seconds without a byte (408)."""
    directory = (root or Path(os.environ.get("STREAMING_FILES_DIR", "."))).resolve()
    uploads = progress or UploadProgress()

    # Handlers return our responses, which Starlette's Route serves as any ASGI app.
    Answer = Response | StreamingResponse

    async def download(request: Request) -> Answer:
        path = safe_child(directory, request.path_params["name"])
        if path is None:
            return PlainTextResponse("Not Found", status_code=404)
        return FileResponse(path)

    async def export(request: Request) -> Answer:
        try:
            rows = query_int(request, "rows", 1000, 0, 10_000_000)
        except QueryError as error:
            return PlainTextResponse(str(error), status_code=400)
        return StreamingResponse(csv_rows(rows), media_type="text/csv",
                                 headers={"content-disposition": _attachment("export.csv")})

    async def bundle(request: Request) -> Answer:
        names = request.query_params.get("names")
        if names is None:
            paths = sorted(p for p in directory.iterdir()
                           if p.is_file() and not p.name.startswith("."))
        else:
            found = [safe_child(directory, name) for name in names.split(",")]
            if None in found:
                return PlainTextResponse("Not Found", status_code=404)
            paths = [p for p in found if p is not None]
        return StreamingResponse(zip_stream(paths), media_type="application/zip",
                                 headers={"content-disposition": _attachment("bundle.zip")})

    async def video_page(request: Request) -> Response:
        name = request.path_params["name"]
        if safe_child(directory, name) is None:
            return PlainTextResponse("Not Found", status_code=404)
        return HTMLResponse(VIDEO_PAGE.format(src=escape("/files/" + quote(name))))

    def body_of(request: Request) -> RequestBody:
        # The whole upload may take long; only silence is a timeout.
        return RequestBody.of(request, max_size=max_upload, idle_timeout=idle_timeout,
                              read_timeout=None)

    def tracked(request: Request) -> UploadState | None:
        upload_id = request.query_params.get("id", "")
        if UPLOAD_ID.fullmatch(upload_id) is None:
            return None
        state = uploads.state(upload_id)
        length = request.headers.get("content-length", "")
        # ASCII digits only: str.isdigit() alone also takes "²" and "١٢".
        state.total = int(length) if length.isascii() and length.isdigit() else None
        return state

    async def store(request: Request, work: AsyncIterator[UploadResult],
                    state: UploadState | None) -> Response:
        results = []
        try:
            async for result in work:
                results.append({"name": result.path.name, "size": result.size,
                                "sha256": result.sha256})
        except Exception as exc:
            status, detail, headers = _failed(exc)
            if state is not None:
                state.finish("failed", {"status": status, "detail": detail})
            return PlainTextResponse(detail, status_code=status, headers=headers)
        if state is not None:
            state.finish("done", results)
        return Response(json.dumps(results), media_type="application/json")

    async def put_upload(request: Request) -> Response:
        name = safe_name(request.path_params["name"])
        if name is None:
            return PlainTextResponse("bad file name", status_code=400)
        state = tracked(request)

        async def work() -> AsyncIterator[UploadResult]:
            sink = UploadSink(directory / name,
                              on_progress=state.update if state else None)
            yield await sink.receive(body_of(request))
        return await store(request, work(), state)

    async def post_upload(request: Request) -> Response:
        state = tracked(request)
        body = body_of(request)

        async def work() -> AsyncIterator[UploadResult]:
            async for part in multipart_parts(body, request.headers.get("content-type", "")):
                name = safe_name(part.filename or "")
                if name is None:
                    continue  # a plain form field, or a name we will not write
                sink = UploadSink(directory / name,
                                  on_progress=(lambda _: state.update(body.received))
                                  if state else None)
                yield await sink.receive(part)
        return await store(request, work(), state)

    async def upload_progress(request: Request) -> Answer:
        upload_id = request.path_params["id"]
        if UPLOAD_ID.fullmatch(upload_id) is None:
            return PlainTextResponse("bad upload id", status_code=400)
        return EventSourceResponse(uploads.events(upload_id))

    async def upload_page(request: Request) -> Response:
        return HTMLResponse(UPLOAD_PAGE)

    async def transform(request: Request) -> Answer:
        # The driver forwards the request body to `incoming` while the
        # response streams; RequestBody reads it from there, within limits.
        incoming = RequestStream()
        body = RequestBody(request.scope, incoming.receive, max_size=max_upload,
                           idle_timeout=idle_timeout, read_timeout=None)
        return NDJSONResponse(transformed(body), request_stream=incoming)

    return Starlette(routes=[
        Route("/upload/{name}", put_upload, methods=["PUT"]),
        Route("/upload", post_upload, methods=["POST"]),
        Route("/upload/{id}/progress", upload_progress),
        Route("/page/upload", upload_page),
        Route("/transform", transform, methods=["POST"]),
        Route("/files/{name}", download, methods=["GET", "HEAD"]),
        Route("/export.csv", export),
        Route("/bundle.zip", bundle),
        Route("/page/video/{name}", video_page),
    ])
