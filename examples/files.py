"""Large files: downloads with ranges, generated downloads (CSV, ZIP).

``STREAMING_FILES_DIR=/some/dir uvicorn --factory examples.files:create_app``
serves (the directory defaults to the current one):

* ``/files/{name}``: a file of the directory through ``FileResponse`` (ranges,
  resume, conditional requests; zero-copy where the server offers it);
* ``/export.csv?rows=N``: a CSV export streamed row by row, never held whole;
* ``/bundle.zip?names=a,b``: a ZIP of those files of the directory (all of
  them without ``names``), built on the fly while it streams (no temporary
  file, constant memory);
* ``/page/video/{name}``: a ``<video>`` element playing ``/files/{name}``.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import AsyncIterator, Iterator
from html import escape
from pathlib import Path
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from streaming import FileResponse, StreamingResponse

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


def _attachment(filename: str) -> str:
    return f'attachment; filename="{filename}"'


def create_app(root: Path | None = None) -> Starlette:
    """The app, serving ``root`` (default ``$STREAMING_FILES_DIR`` or ".")."""
    directory = (root or Path(os.environ.get("STREAMING_FILES_DIR", "."))).resolve()

    # Handlers return our responses, which Starlette's Route serves as any ASGI app.
    Answer = Response | StreamingResponse

    async def download(request: Request) -> Answer:
        path = safe_child(directory, request.path_params["name"])
        if path is None:
            return PlainTextResponse("Not Found", status_code=404)
        return FileResponse(path)

    async def export(request: Request) -> Answer:
        try:
            rows = min(int(request.query_params.get("rows", "1000")), 10_000_000)
        except ValueError:
            return PlainTextResponse("rows must be an integer", status_code=400)
        return StreamingResponse(csv_rows(max(rows, 0)), media_type="text/csv",
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

    return Starlette(routes=[
        Route("/files/{name}", download, methods=["GET", "HEAD"]),
        Route("/export.csv", export),
        Route("/bundle.zip", bundle),
        Route("/page/video/{name}", video_page),
    ])
