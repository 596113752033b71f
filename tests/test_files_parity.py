"""Parity with Starlette's FileResponse (pinned in tests/constraints.txt).

Every request both answer correctly gets the same status, the same headers that
matter and the same bytes; every row of the README's "where we differ" table is
asserted here, Starlette's answer and ours. Both run in-process on the same file.
"""

from __future__ import annotations

import email
import email.policy
import os
from pathlib import Path

import anyio
import pytest
from starlette.responses import FileResponse as StarletteFileResponse

from streaming import FileResponse
from streaming._types import ASGIApp, Receive, Scope, Send
from streaming.testing import StreamingClient, TestResponse

DATA = bytes(range(256)) * 40  # 10,240 bytes
SIZE = len(DATA)
COMPARED = ("content-length", "content-range", "content-type", "accept-ranges",
            "last-modified", "content-disposition")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    target = tmp_path / "data.bin"
    target.write_bytes(DATA)
    return target


async def answer(kind: str, path: Path, method: str = "GET", filename: str | None = None,
                 **headers: str) -> TestResponse:
    response_class = FileResponse if kind == "ours" else StarletteFileResponse

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await response_class(path, filename=filename)(scope, receive, send)
    return await StreamingClient(app).request(method, "/", headers=headers)


def parts(reply: TestResponse) -> list[tuple[str, bytes]]:
    """(Content-Range, data) of each part of a multipart/byteranges body."""
    head = b"Content-Type: " + reply.headers["content-type"].encode() + b"\r\n\r\n"
    message = email.message_from_bytes(head + reply.body, policy=email.policy.default)
    return [(str(p["Content-Range"]), p.get_content()) for p in message.iter_parts()]


SAME = [
    {},
    {"range": "bytes=0-99"},
    {"range": "bytes=-100"},
    {"range": "bytes=100-"},
    {"range": "bytes=0-99999"},
    {"range": "bytes=99999-"},          # 416, Content-Range: bytes */10240
    {"range": "bytes=10240-10300"},
    {"if-range": "Thu, 01 Jan 1970 00:00:00 GMT", "range": "bytes=0-9"},  # stale: 200
    {"range": "bytes=0-9, 5000-5009"},  # two parts, far apart, in ascending order
]


@pytest.mark.parametrize("headers", SAME)
async def test_same_answer(path: Path, headers: dict[str, str]) -> None:
    ours, theirs = await answer("ours", path, **headers), await answer("starlette", path,
                                                                        **headers)
    assert ours.status_code == theirs.status_code
    if ours.headers.get("content-type", "").startswith("multipart/byteranges"):
        assert theirs.headers["content-type"].startswith("multipart/byteranges")
        assert parts(ours) == parts(theirs)
        return
    if ours.status_code == 416:  # neither sends a body; our error body has no charset clash
        assert ours.headers["content-range"] == theirs.headers["content-range"]
        assert ours.body == theirs.body == b""
        return
    for name in COMPARED:
        assert ours.headers.get(name) == theirs.headers.get(name), name
    assert ours.body == theirs.body


async def test_same_head_and_if_range_with_each_ones_etag(path: Path) -> None:
    for kind in ("ours", "starlette"):
        etag = (await answer(kind, path, "HEAD")).headers["etag"]
        reply = await answer(kind, path, range="bytes=5-9", **{"if-range": etag})
        assert (reply.status_code, reply.body) == (206, DATA[5:10])
    ours, theirs = await answer("ours", path, "HEAD"), await answer("starlette", path, "HEAD")
    assert (ours.status_code, ours.body) == (theirs.status_code, theirs.body) == (200, b"")
    for name in COMPARED:
        assert ours.headers.get(name) == theirs.headers.get(name), name


async def test_same_ascii_filename(path: Path) -> None:
    ours = await answer("ours", path, filename="report.pdf")
    theirs = await answer("starlette", path, filename="report.pdf")
    for name in ("content-disposition", "content-type"):
        assert ours.headers[name] == theirs.headers[name]


# -- the README's table: where we differ, and the RFC 9110 clause -----------------

async def statuses(path: Path, method: str = "GET", **headers: str) -> tuple[int, int]:
    ours = await answer("ours", path, method, **headers)
    theirs = await answer("starlette", path, method, **headers)
    assert ours.status_code is not None and theirs.status_code is not None
    return ours.status_code, theirs.status_code


async def test_unknown_range_unit(path: Path) -> None:
    assert await statuses(path, range="items=0-1") == (200, 400)  # 14.2: MUST ignore


async def test_invalid_range_syntax(path: Path) -> None:
    assert await statuses(path, range="bytes=oops") == (200, 400)  # 14.2: MAY ignore


async def test_if_none_match_and_if_modified_since(path: Path) -> None:
    etag = (await answer("ours", path, "HEAD")).headers["etag"]
    assert (await statuses(path, **{"if-none-match": etag}))[0] == 304
    their_etag = (await answer("starlette", path, "HEAD")).headers["etag"]
    assert (await statuses(path, **{"if-none-match": their_etag}))[1] == 200
    date = (await answer("ours", path, "HEAD")).headers["last-modified"]
    assert await statuses(path, **{"if-modified-since": date}) == (304, 200)


async def test_if_match_and_if_unmodified_since(path: Path) -> None:
    assert await statuses(path, **{"if-match": '"other"'}) == (412, 200)
    earlier = {"if-unmodified-since": "Thu, 01 Jan 1970 00:00:00 GMT"}
    assert await statuses(path, **earlier) == (412, 200)


async def test_one_satisfiable_range_of_two(path: Path) -> None:
    ours = await answer("ours", path, range="bytes=0-9,99999-")
    assert (ours.status_code, ours.body) == (206, DATA[:10])  # 14.1.1
    assert (await answer("starlette", path, range="bytes=0-9,99999-")).status_code == 416


async def test_part_order(path: Path) -> None:
    header = {"range": "bytes=5000-,0-9"}
    ours, theirs = await answer("ours", path, **header), await answer("starlette", path, **header)
    assert [r for r, _ in parts(ours)] == [f"bytes 5000-{SIZE - 1}/{SIZE}", f"bytes 0-9/{SIZE}"]
    assert [r for r, _ in parts(theirs)] == [f"bytes 0-9/{SIZE}", f"bytes 5000-{SIZE - 1}/{SIZE}"]


async def test_small_gap_coalesced(path: Path) -> None:
    header = {"range": "bytes=0-9,20-29"}
    ours, theirs = await answer("ours", path, **header), await answer("starlette", path, **header)
    assert (ours.headers["content-range"], ours.body) == (f"bytes 0-29/{SIZE}", DATA[:30])
    assert len(parts(theirs)) == 2


async def test_head_with_range(path: Path) -> None:
    assert await statuses(path, "HEAD", range="bytes=0-9") == (200, 206)  # 14.2: GET only


async def test_non_ascii_filename(path: Path) -> None:
    ours = await answer("ours", path, filename="résumé.pdf")
    theirs = await answer("starlette", path, filename="résumé.pdf")
    assert ours.headers["content-disposition"] == (
        "attachment; filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf")
    assert theirs.headers["content-disposition"] == (
        "attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf")


def _rewrite_in_place(path: Path, size: int) -> None:
    with open(path, "r+b") as f:  # no truncation: same size, new bytes
        f.write(b"\0" * size)


async def test_file_rewritten_mid_download(path: Path) -> None:
    big = os.urandom(256 * 1024)
    await anyio.Path(path).write_bytes(big)
    bodies: dict[str, tuple[bytes, bool]] = {}
    for kind in ("ours", "starlette"):
        await anyio.Path(path).write_bytes(big)
        app: ASGIApp = (FileResponse(path, chunk_size=64 * 1024) if kind == "ours"
                        else StarletteFileResponse(path))
        client = StreamingClient(app, buffer=1, raise_app_exceptions=False)
        async with client.stream("GET", "/") as reply:
            await reply.next_chunk()
            await anyio.to_thread.run_sync(_rewrite_in_place, path, len(big))
            await reply.read()
        bodies[kind] = (reply.body, reply.complete)
    ours_body, ours_complete = bodies["ours"]
    theirs_body, theirs_complete = bodies["starlette"]
    assert not ours_complete and big.startswith(ours_body)  # cut, one version only
    assert theirs_complete and len(theirs_body) == len(big) and theirs_body != big  # mixed
