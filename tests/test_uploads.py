"""UploadSink and multipart_parts in-process: atomic, hashed, nothing left behind."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from streaming.exceptions import MultipartError
from streaming.uploads import UploadSink, multipart_parts


async def chunks(*parts: bytes, then: BaseException | None = None) -> AsyncIterator[bytes]:
    for part in parts:
        await anyio.lowlevel.checkpoint()
        yield part
    if then is not None:
        raise then


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_upload_lands_atomically_with_its_sha256(tmp_path: Path) -> None:
    target = tmp_path / "movie.bin"
    target.write_bytes(b"old version")
    seen: list[int] = []
    sink = UploadSink(target, on_progress=seen.append)
    result = await sink.receive(chunks(b"a" * 1000, b"b" * 24))
    data = b"a" * 1000 + b"b" * 24
    assert (result.path, result.size) == (target, len(data))
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert target.read_bytes() == data
    assert seen == [1000, 1024]
    assert leftovers(tmp_path) == ["movie.bin"]


async def test_partial_file_is_in_the_target_directory_while_it_runs(tmp_path: Path) -> None:
    sink = UploadSink(tmp_path / "f.bin")
    seen: list[Path] = []

    async def watching() -> AsyncIterator[bytes]:
        yield b"x"
        assert sink.partial is not None
        seen.append(sink.partial)
    await sink.receive(watching())
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".f.bin.")
    assert not seen[0].exists()


@pytest.mark.parametrize("failure", [ValueError("producer broke"), OSError("disk")])
async def test_error_removes_the_partial_file_and_keeps_the_old(tmp_path: Path,
                                                               failure: Exception) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(type(failure)):
        await UploadSink(target).receive(chunks(b"new data", then=failure))
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == ["f.bin"]


async def test_cancellation_removes_the_partial_file(tmp_path: Path) -> None:
    started = anyio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield b"some"
        started.set()
        await anyio.sleep_forever()
        yield b"never"  # pragma: no cover

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(UploadSink(tmp_path / "f.bin").receive, stalls())
            await started.wait()
            group.cancel_scope.cancel()
    assert leftovers(tmp_path) == []


async def test_no_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        await UploadSink(target, overwrite=False).receive(chunks(b"new"))
    assert target.read_bytes() == b"keep" and leftovers(tmp_path) == ["f.bin"]


def form(boundary: str, *fields: tuple[str, str | None, bytes]) -> bytes:
    body = b""
    for name, filename, data in fields:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
                 f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


async def test_multipart_streams_parts_chunk_by_chunk(tmp_path: Path) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    body = form("XyZ", ("title", None, "Été".encode()), ("file", "vidéo.bin", big),
                ("skipped", None, b"unread"), ("last", None, b"1"))
    pieces = [body[i:i + 8192] for i in range(0, len(body), 8192)]
    got: dict[str, object] = {}
    largest = 0
    async for part in multipart_parts(chunks(*pieces), "multipart/form-data; boundary=XyZ"):
        if part.filename:
            async for data in part:
                largest = max(largest, len(data))
            got[part.name] = part.filename
        elif part.name != "skipped":  # a part not read is skipped
            got[part.name] = (await part.read()).decode()
    assert got == {"title": "Été", "file": "vidéo.bin", "last": "1"}
    assert largest <= 8192  # never more than one body chunk at a time


async def test_multipart_file_part_into_an_upload_sink(tmp_path: Path) -> None:
    big = b"z" * 300_000
    body = form("b", ("file", "a.bin", big))
    async for part in multipart_parts(chunks(body[:1000], body[1000:]),
                                      'multipart/form-data; boundary="b"'):
        result = await UploadSink(tmp_path / "a.bin").receive(part)
    assert result.sha256 == hashlib.sha256(big).hexdigest()


@pytest.mark.parametrize(("content_type", "body"), [
    ("text/plain", b""),
    ("multipart/form-data", b""),                                  # no boundary
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"a\""
                                        b"\r\n\r\ncut"),           # ends before the boundary
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"a\""
                                        b"\r\nX: " + b"h" * 20000 + b"\r\n\r\nv\r\n--b--\r\n"),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Type: x\r\n\r\nv\r\n--b--\r\n"),
])
async def test_malformed_multipart(content_type: str, body: bytes) -> None:
    with pytest.raises(MultipartError) as caught:
        await read_all(content_type, body)
    assert caught.value.status_code == 400


async def read_all(content_type: str, body: bytes, max_size: int = 65536) -> None:
    async for part in multipart_parts(chunks(body), content_type):
        await part.read(max_size)


async def test_large_field_read_is_refused() -> None:
    body = form("b", ("note", None, b"n" * 100))
    with pytest.raises(MultipartError):
        await read_all("multipart/form-data; boundary=b", body, max_size=10)
