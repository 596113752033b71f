"""Uploads on a real uvicorn: curl -T, httpx multipart, hand-driven sockets for
the client that stalls or leaves, upload progress over SSE, and Chromium."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse
from playwright.sync_api import FilePayload

from examples.files import create_app
from tests.browser import chromium
from tests.servers import UvicornThread

LIMIT = 2 * 1024 * 1024


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "uploads"
    root.mkdir()
    with UvicornThread(create_app(root, max_upload=LIMIT, idle_timeout=0.5)) as running:
        yield running.url, root


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def wait_until(condition: Callable[[], object], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.01)  # polling an observable condition against a deadline


def curl_put(url: str, *args: str, stdin: bytes | None = None) -> tuple[str, bytes]:
    result = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args, url],
                            input=stdin, capture_output=True, timeout=60, check=False)
    body, _, status = result.stdout.rpartition(b"\n")
    return status.decode(), body


def test_curl_T_uploads_with_its_sha256(server: tuple[str, Path], tmp_path: Path) -> None:
    url, root = server
    source = tmp_path / "source.bin"
    data = os.urandom(LIMIT - 1)
    source.write_bytes(data)
    status, body = curl_put(f"{url}/upload/copy.bin", "-T", str(source))
    assert status == "200"
    assert json.loads(body) == [{"name": "copy.bin", "size": len(data),
                                 "sha256": hashlib.sha256(data).hexdigest()}]
    assert (root / "copy.bin").read_bytes() == data
    assert leftovers(root) == ["copy.bin"]


def test_content_length_over_the_limit_is_refused_unread(server: tuple[str, Path],
                                                         tmp_path: Path) -> None:
    url, root = server
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * (LIMIT + 1))
    status, _ = curl_put(f"{url}/upload/big.bin", "-T", str(source))
    assert status == "413"
    assert leftovers(root) == []


def test_chunked_body_over_the_limit_is_413_and_removed(server: tuple[str, Path]) -> None:
    url, root = server
    # curl -T - reads stdin and sends it chunked: no Content-Length to refuse.
    status, _ = curl_put(f"{url}/upload/big.bin", "-T", "-", stdin=b"y" * (LIMIT + 100_000))
    assert status == "413"
    assert leftovers(root) == []


def raw_upload(url: str, name: str, length: int) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=10)
    conn.sendall(f"PUT /upload/{name}?id=u1 HTTP/1.1\r\nHost: x\r\n"
                 f"Content-Length: {length}\r\n\r\n".encode())
    return conn


def test_a_stalled_upload_is_408_and_removed(server: tuple[str, Path]) -> None:
    url, root = server
    with raw_upload(url, "slow.bin", 1000) as conn:
        conn.sendall(b"z" * 10)
        wait_until(lambda: leftovers(root), "the partial file")
        assert leftovers(root)[0].startswith(".slow.bin.")
        reply = conn.recv(65536)  # the idle timeout (0.5 s) answers
    assert reply.startswith(b"HTTP/1.1 408 ")
    wait_until(lambda: leftovers(root) == [], "the partial file's removal")


def test_a_client_leaving_mid_upload_removes_the_partial_file(server: tuple[str, Path]) -> None:
    url, root = server
    with raw_upload(url, "gone.bin", LIMIT) as conn:
        conn.sendall(b"z" * 100_000)
        wait_until(lambda: leftovers(root), "the partial file")
    wait_until(lambda: leftovers(root) == [], "the partial file's removal")


def test_multipart_upload_with_httpx(server: tuple[str, Path]) -> None:
    url, root = server
    video, notes = os.urandom(1_500_000), "notes ünïcode".encode()
    files = [("file", ("clip.bin", video)), ("file", ("nötes.txt", notes))]
    reply = httpx.post(f"{url}/upload", files=files, data={"title": "x"}, timeout=30)
    assert reply.status_code == 200
    assert [(r["name"], r["sha256"]) for r in reply.json()] == [
        ("clip.bin", hashlib.sha256(video).hexdigest()),
        ("nötes.txt", hashlib.sha256(notes).hexdigest())]
    assert leftovers(root) == ["clip.bin", "nötes.txt"]


def test_progress_over_sse_while_the_upload_runs(server: tuple[str, Path]) -> None:
    url, _ = server
    pieces = [b"a" * 40_000, b"b" * 25_000, b"c" * 35_000]
    total = sum(map(len, pieces))
    with httpx.Client(timeout=10) as client, \
            connect_sse(client, "GET", f"{url}/upload/u1/progress") as source:
        events = source.iter_sse()
        assert json.loads(next(events).data) == {"received": 0, "total": None}
        with raw_upload(url, "p.bin", total) as conn:
            sent = 0
            for piece in pieces:  # the next piece only once this one is reported
                conn.sendall(piece)
                sent += len(piece)
                while (event := next(events)).event == "progress":
                    progress = json.loads(event.data)
                    assert progress["total"] == total and progress["received"] <= sent
                    if progress["received"] == sent:
                        break
            done = next(events)
            assert conn.recv(65536).startswith(b"HTTP/1.1 200 ")
    assert done.event == "done"
    assert json.loads(done.data)[0]["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()


def test_upload_page_progress_bar_in_chromium(server: tuple[str, Path]) -> None:
    url, root = server
    data = os.urandom(1_200_000)
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{url}/page/upload")
        picked: FilePayload = {"name": "pick.bin", "mimeType": "application/octet-stream",
                               "buffer": data}
        page.set_input_files("#file", files=[picked])
        page.click("#send")
        page.wait_for_function("document.getElementById('status').textContent !== ''",
                               timeout=20_000)
        status = page.text_content("#status")
        bar = page.eval_on_selector("#bar", "b => [b.value, b.max]")
        seen = page.evaluate("window.progressSeen")
    assert status == "done " + hashlib.sha256(data).hexdigest()
    assert bar[0] == bar[1] > len(data)  # full: the form's bytes, the file and its framing
    assert seen == sorted(seen) and seen[-1] == bar[1]  # the bar only moves forward
    assert (root / "pick.bin").read_bytes() == data
