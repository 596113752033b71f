"""Zero-copy sends on servers that offer them, each path checked on a real one:
``http.response.zerocopysend`` on anycorn (its trio worker, ranges and
multipart too; its asyncio worker cuts large zero-copy bodies),
``http.response.pathsend`` on Granian (whole files), and the chunked path on
uvicorn, which offers neither."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.servers import ROOT

DATA = os.urandom(20 * 1024 * 1024 + 5)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("zerocopy")
    (directory / "data.bin").write_bytes(DATA)
    return directory


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def server(kind: str, root: Path, app: str = "tests.zerocopy_app:create_app") -> Iterator[str]:
    """Start ``kind`` (``anycorn-asyncio``, ``anycorn-trio``, ``granian`` or
    ``uvicorn``) serving the factory ``app`` for the directory ``root``; yield
    its URL; stop it by pid."""
    env = {**os.environ, "STREAMING_FILES_DIR": str(root)}
    port = _free_port()
    if kind.startswith("anycorn"):
        worker = kind.partition("-")[2]
        command = [sys.executable, "-m", "anycorn", f"{app}()",
                   "--bind", f"127.0.0.1:{port}", "--worker-class", worker]
    elif kind == "granian":
        command = [str(Path(sys.executable).parent / "granian"), "--interface", "asgi",
                   "--factory", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                   "--no-log", app]
    else:
        command = [sys.executable, "-m", "uvicorn", "--factory", app,
                   "--port", str(port), "--log-level", "warning"]
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for_listener(port, child)
        yield url
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)


def _wait_for_listener(port: int, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert child.poll() is None, "the server exited at start-up"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # polling a port that is not open yet, against a deadline
    raise TimeoutError(f"nothing listened on {port}")


def stats(client: httpx.Client, url: str) -> dict[str, int]:
    return dict(client.get(f"{url}/stats").json())


def test_zerocopysend_on_anycorn(root: Path) -> None:
    with server("anycorn-trio", root) as url, httpx.Client(timeout=60) as client:
        assert client.get(f"{url}/data.bin").content == DATA
        after_whole = stats(client, url)
        assert after_whole.get("http.response.zerocopysend", 0) >= 1
        assert "http.response.pathsend" not in after_whole  # zerocopysend preferred
        ranged = client.get(f"{url}/data.bin", headers={"range": "bytes=1000-1999999"})
        assert (ranged.status_code, ranged.content) == (206, DATA[1000:2000000])
        multi = client.get(f"{url}/data.bin", headers={"range": "bytes=0-9,-10"})
        assert multi.status_code == 206 and DATA[:10] in multi.content
        assert DATA[-10:] in multi.content
        counts = stats(client, url)
        assert counts["http.response.zerocopysend"] >= after_whole[
            "http.response.zerocopysend"] + 3  # one range, then two parts
        # no file byte went through a body message: only part heads and ends
        assert counts.get("http.response.body", 0) - after_whole.get("http.response.body", 0) \
            <= 8


def test_anycorn_asyncio_worker_cuts_a_zero_copy_body(root: Path) -> None:
    # anycorn 0.20.1's asyncio worker waits for the socket with anyio's
    # wait_writable, which asyncio refuses for a socket its transport owns
    # (RuntimeError): a zero-copy body larger than the socket buffer is cut.
    # Its trio worker is fine; this test fails once the asyncio one is fixed.
    with server("anycorn-asyncio", root) as url, httpx.Client(timeout=60) as client, \
            pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{url}/data.bin")


def test_pathsend_on_granian(root: Path) -> None:
    with server("granian", root) as url, httpx.Client(timeout=60) as client:
        assert client.get(f"{url}/data.bin").content == DATA
        counts = stats(client, url)
        assert counts.get("http.response.pathsend") == 1
        ranged = client.get(f"{url}/data.bin", headers={"range": "bytes=5-9"})
        assert (ranged.status_code, ranged.content) == (206, DATA[5:10])  # chunks: no offset
        assert stats(client, url).get("http.response.pathsend") == 1


def test_chunks_on_uvicorn(root: Path) -> None:
    with server("uvicorn", root) as url, httpx.Client(timeout=60) as client:
        assert client.get(f"{url}/data.bin").content == DATA
        counts = stats(client, url)
        assert "http.response.zerocopysend" not in counts and "http.response.pathsend" not in counts
        assert counts["http.response.body"] > 2
