"""FileResponse in-process: what the range decision says, carried out on a real file."""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio
import pytest

from streaming import EndReason, FileChangedError, FileResponse, FileResponseError, Outcome
from streaming._types import ASGIApp, Receive, Scope, Send
from streaming.responses.file import content_disposition
from streaming.testing import StreamingClient

DATA = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
def path(tmp_path: Path) -> Path:
    target = tmp_path / "data.bin"
    target.write_bytes(DATA)
    return target


def app_for(make: Callable[[], FileResponse]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await make()(scope, receive, send)
    return app


async def fetch(path: Path, method: str = "GET", **headers: str) -> tuple[int, dict[str, str],
                                                                          bytes]:
    client = StreamingClient(app_for(lambda: FileResponse(path)))
    response = await client.request(method, "/", headers=headers)
    assert response.status_code is not None
    return response.status_code, response.headers, response.body


async def test_whole_file_with_validators(path: Path) -> None:
    status, headers, body = await fetch(path)
    assert (status, body) == (200, DATA)
    assert headers["content-length"] == str(len(DATA))
    assert headers["accept-ranges"] == "bytes"
    assert headers["content-type"] == "application/octet-stream"
    assert headers["etag"].startswith('"') and headers["last-modified"].endswith(" GMT")


async def test_single_range(path: Path) -> None:
    status, headers, body = await fetch(path, range="bytes=100-199")
    assert (status, body) == (206, DATA[100:200])
    assert headers["content-range"] == f"bytes 100-199/{len(DATA)}"
    assert headers["content-length"] == "100"


async def test_multipart_byteranges(path: Path) -> None:
    status, headers, body = await fetch(path, range="bytes=5000-5009,0-9,-5")
    assert status == 206
    assert int(headers["content-length"]) == len(body)
    content_type = headers["content-type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    message = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n"
                                       + body, policy=email.policy.default)
    parts = [(p["Content-Range"], p["Content-Type"], p.get_content())
             for p in message.iter_parts()]
    size = len(DATA)
    assert parts == [  # in the order requested (RFC 9110 14.6)
        (f"bytes 5000-5009/{size}", "application/octet-stream", DATA[5000:5010]),
        (f"bytes 0-9/{size}", "application/octet-stream", DATA[:10]),
        (f"bytes {size - 5}-{size - 1}/{size}", "application/octet-stream", DATA[-5:]),
    ]


async def test_unsatisfiable_and_ignored_ranges(path: Path) -> None:
    status, headers, body = await fetch(path, range="bytes=99999-")
    assert (status, body, headers["content-range"]) == (416, b"", f"bytes */{len(DATA)}")
    assert (await fetch(path, range="items=0-1"))[::2] == (200, DATA)  # RFC 9110 14.2
    assert (await fetch(path, range="bytes=oops"))[::2] == (200, DATA)


async def test_conditional_requests(path: Path) -> None:
    _, headers, _ = await fetch(path)
    status, not_modified, body = await fetch(path, **{"if-none-match": headers["etag"]})
    assert (status, body) == (304, b"")
    assert not_modified["etag"] == headers["etag"] and "content-length" not in not_modified
    modified_since = {"if-modified-since": headers["last-modified"]}
    assert (await fetch(path, **modified_since))[0] == 304
    assert (await fetch(path, **{"if-match": '"other"'}))[0] == 412
    if_range = {"range": "bytes=0-0", "if-range": '"stale"'}
    assert (await fetch(path, **if_range))[::2] == (200, DATA)
    if_range["if-range"] = headers["etag"]
    assert (await fetch(path, **if_range))[::2] == (206, DATA[:1])


async def test_head_sends_headers_only(path: Path) -> None:
    status, headers, body = await fetch(path, "HEAD", range="bytes=0-9")
    assert (status, body, headers["content-length"]) == (200, b"", str(len(DATA)))
    response = FileResponse(path, method="HEAD")
    reply = await StreamingClient(app_for(lambda: response)).get("/")
    assert (reply.status_code, reply.body) == (200, b"")
    assert response.outcome is not None and response.outcome.reason is EndReason.HEAD


async def test_starlette_signature_and_headers(path: Path) -> None:
    response = FileResponse(path, 200, {"etag": '"mine"'}, None, None, "résumé.pdf",
                            os.stat(path), None, "inline")
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["etag"] == '"mine"'  # the caller's header wins
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["content-disposition"] == (
        "inline; filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf")
    assert content_disposition("attachment", "a b.txt") == 'attachment; filename="a b.txt"'
    assert content_disposition("attachment", 'x"y') == (
        "attachment; filename=\"x_y\"; filename*=UTF-8''x%22y")


async def test_missing_file_and_directory(tmp_path: Path) -> None:
    for target in (tmp_path / "missing", tmp_path):
        client = StreamingClient(app_for(partial(FileResponse, target)))
        with pytest.raises(FileResponseError):
            await client.get("/")


class _FifoRescue:
    """Opens the write end of ``fifo`` after ``deadline`` seconds, which
    releases a reader blocked in ``open()``, so a regression fails the test
    (``fired``) instead of hanging it: a worker thread cannot be cancelled."""

    def __init__(self, fifo: Path, deadline: float = 5.0) -> None:
        self.fifo, self.fired = fifo, False
        self._timer = threading.Timer(deadline, self._release)

    def _release(self) -> None:
        self.fired = True
        with contextlib.suppress(OSError):  # ENXIO: nobody was blocked
            os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))

    def __enter__(self) -> _FifoRescue:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()


async def test_fifo_device_and_unreadable_file_are_refused_before_headers(
        tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with _FifoRescue(fifo) as rescue:
        client = StreamingClient(app_for(lambda: FileResponse(fifo)))
        with pytest.raises(FileResponseError, match="is not a file"):
            await client.get("/")
    assert not rescue.fired, "opening a FIFO with no writer blocked the worker thread"
    client = StreamingClient(app_for(lambda: FileResponse("/dev/zero")))
    with pytest.raises(FileResponseError, match="is not a file"):
        await client.get("/")
    if os.geteuid() != 0:  # root reads a mode-0 file anyway
        locked = tmp_path / "locked"
        locked.write_bytes(b"secret")
        locked.chmod(0)
        client = StreamingClient(app_for(lambda: FileResponse(locked)))
        with pytest.raises(FileResponseError, match="is not readable"):
            await client.get("/")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_client_leaving_closes_the_file(path: Path) -> None:
    client = StreamingClient(app_for(lambda: FileResponse(path, chunk_size=100)), buffer=1)
    before = _open_fds()
    response = FileResponse(path, chunk_size=100)
    client = StreamingClient(app_for(lambda: response), buffer=1)
    with anyio.fail_after(5):
        async with client.stream("GET", "/", disconnect_after=2) as reply:
            assert _open_fds() == before + 1  # the file is open while it streams
            await reply.read()
        outcome = await response.wait_for_outcome()
    assert outcome.reason is EndReason.CLIENT_DISCONNECTED
    assert _open_fds() == before


@pytest.mark.parametrize("change", ["truncate", "rewrite"])
async def test_file_changing_during_download_cuts_the_body(path: Path, change: str) -> None:
    response = FileResponse(path, chunk_size=1024)
    client = StreamingClient(app_for(lambda: response), buffer=1,
                             raise_app_exceptions=False)
    with anyio.fail_after(5):
        async with client.stream("GET", "/") as reply:
            first = await reply.next_chunk()
            if change == "truncate":
                os.truncate(path, 2048)
            else:
                await anyio.Path(path).write_bytes(b"\xff" * len(DATA))  # same size
                os.utime(path, ns=(1, 1))
            rest = await reply.read()
    assert first == DATA[:1024]
    assert not reply.complete  # cut: no end of body
    assert DATA.startswith(rest)  # every byte sent is of the first version
    assert isinstance(reply.app_exception, FileChangedError)


async def test_file_replaced_by_rename_is_served_whole(path: Path, tmp_path: Path) -> None:
    response = FileResponse(path, chunk_size=1024)
    client = StreamingClient(app_for(lambda: response), buffer=1)
    with anyio.fail_after(5):
        async with client.stream("GET", "/") as reply:
            await reply.next_chunk()
            replacement = tmp_path / "new.bin"
            replacement.write_bytes(b"new")
            os.replace(replacement, path)
            await reply.read()
    assert reply.complete and reply.body == DATA  # the version its ETag names


async def test_status_other_than_200_serves_the_file(path: Path) -> None:
    client = StreamingClient(app_for(lambda: FileResponse(path, 404)))
    reply = await client.get("/", headers={"range": "bytes=0-1"})
    assert (reply.status_code, reply.body) == (404, DATA)


def scope_offering(extension: str, headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {"type": "http", "method": "GET", "path": "/", "headers": headers or [],
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "extensions": {extension: {}}}


async def run_recording(response: FileResponse, scope: Scope,
                        on_send: Callable[[dict[str, object]], None] | None = None,
                        ) -> list[dict[str, object]]:
    """Run ``response`` against a server that offers an extension and records
    every message (the real servers are in tests/test_files_zerocopy.py)."""
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(message: dict[str, object]) -> None:
        sent.append(dict(message))
        if on_send is not None:
            on_send(message)
    with anyio.fail_after(5):
        await response(scope, receive, send)  # type: ignore[arg-type]
    return sent


async def _outcome_of(path: Path, extension: str) -> Outcome:
    response = FileResponse(path, chunk_size=1024)
    await run_recording(response, scope_offering(extension))
    assert response.outcome is not None
    return response.outcome


async def test_pathsend_is_the_whole_body_and_the_last_message(path: Path) -> None:
    # chunk_size below the file's size: a file that fits in the first read is
    # sent as bytes with the open (test_small_file_is_sent_as_bytes_anyway).
    sent = await run_recording(FileResponse(path, chunk_size=1024),
                               scope_offering("http.response.pathsend"))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    assert len(DATA) == (await _outcome_of(path, "http.response.pathsend")).bytes_sent
    assert sent[1]["path"] == str(path)
    ranged = await run_recording(FileResponse(path), scope_offering(
        "http.response.pathsend", [(b"range", b"bytes=0-9")]))
    assert ranged[1] == {"type": "http.response.body", "body": DATA[:10], "more_body": True}


def sparse(path: Path, size: int = 20 * 1024 * 1024) -> None:
    with open(path, "wb") as f:
        f.truncate(size)


async def test_zerocopysend_in_slices(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    sparse(big)
    response = FileResponse(big)
    sent = await run_recording(response, scope_offering("http.response.zerocopysend"))
    pieces = [(m["offset"], m["count"]) for m in sent if m["type"] == "http.response.zerocopysend"]
    mib, head = 1024 * 1024, FileResponse.chunk_size  # the first chunk came with the open
    assert sent[1] == {"type": "http.response.body", "body": bytes(head), "more_body": True}
    assert pieces == [(head, 8 * mib), (head + 8 * mib, 8 * mib),
                      (head + 16 * mib, 4 * mib - head)]
    assert response.outcome is not None and response.outcome.bytes_sent == 20 * mib
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_small_file_is_sent_as_bytes_anyway(path: Path) -> None:
    for extension in ("http.response.pathsend", "http.response.zerocopysend"):
        sent = await run_recording(FileResponse(path), scope_offering(extension))
        assert [m.get("body") for m in sent[1:]] == [DATA, b""]


async def test_file_changed_during_zerocopysend_cuts_the_body(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    sparse(big)

    def truncate_after_first_slice(message: dict[str, object]) -> None:
        if message["type"] == "http.response.zerocopysend":
            os.truncate(big, 1024)
    with pytest.raises(FileChangedError):
        await run_recording(FileResponse(big), scope_offering("http.response.zerocopysend"),
                            truncate_after_first_slice)
