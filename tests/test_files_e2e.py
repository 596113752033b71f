"""FileResponse and the generated downloads on a real uvicorn, with real clients
(curl, httpx), and the server process's memory and file descriptors measured."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import uvicorn_process

DATA = os.urandom(3 * 1024 * 1024 + 17)
SPARSE = 4 * 1024**3  # 4 GiB, holes only: nothing on disk, nothing in the page cache
TAIL = 512 * 1024**2


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, int]]:
    root = tmp_path_factory.mktemp("files")
    (root / "data.bin").write_bytes(DATA)
    (root / "notes.txt").write_text("hello, zip\n" * 1000)
    with open(root / "sparse.bin", "wb") as f:
        f.truncate(SPARSE)
    env = {"STREAMING_FILES_DIR": str(root)}
    with uvicorn_process("examples.files:create_app", "--factory", env=env) as (child, url):
        yield url, root, child.pid


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "-sS", "--fail", *args], capture_output=True, timeout=60,
                          check=True)


def test_curl_range(served: tuple[str, Path, int]) -> None:
    url = served[0]
    assert curl("--range", "100-199", f"{url}/files/data.bin").stdout == DATA[100:200]
    headers = curl("-I", f"{url}/files/data.bin").stdout.decode().lower()
    assert "accept-ranges: bytes" in headers and f"content-length: {len(DATA)}" in headers


def test_curl_resumes_an_interrupted_download(served: tuple[str, Path, int],
                                              tmp_path: Path) -> None:
    url = served[0]
    target = tmp_path / "download.bin"
    target.write_bytes(DATA[:1_000_003])  # what an interrupted first attempt left
    result = curl("-C", "-", "-o", str(target), "-w", "%{http_code}", f"{url}/files/data.bin")
    assert result.stdout == b"206"  # curl sent Range: bytes=1000003-
    assert hashlib.sha256(target.read_bytes()).hexdigest() == hashlib.sha256(DATA).hexdigest()


def test_httpx_conditional_and_multirange(served: tuple[str, Path, int]) -> None:
    url = f"{served[0]}/files/data.bin"
    with httpx.Client(timeout=30) as client:
        first = client.get(url)
        assert first.content == DATA
        again = client.get(url, headers={"if-none-match": first.headers["etag"]})
        assert (again.status_code, again.content) == (304, b"")
        multi = client.get(url, headers={"range": "bytes=0-9,2000000-2000009"})
        assert multi.status_code == 206
        assert multi.headers["content-type"].startswith("multipart/byteranges")
        assert DATA[:10] in multi.content and DATA[2000000:2000010] in multi.content


def _status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])  # KiB
    return fields


def _open_copies(pid: int, path: Path) -> int:
    """How many descriptors of process ``pid`` are open on ``path``."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):  # closed while we looked
            count += os.readlink(f"/proc/{pid}/fd/{fd}") == str(path)
    return count


def test_4_gib_sparse_file_in_constant_memory(served: tuple[str, Path, int]) -> None:
    url, _, pid = served
    curl("-o", "/dev/null", f"{url}/files/data.bin")  # warm up: imports, buffers
    before = _status(pid)["VmHWM"]
    # The last 512 MiB, past the 4 GiB mark (the whole 4 GiB runs in
    # benchmarks/files.py: tens of seconds on a shared machine): anything
    # kept per chunk would show as 50 times the limit.
    result = curl("-o", "/dev/null", "-w", "%{size_download}", "--range", f"{SPARSE - TAIL}-",
                  f"{url}/files/sparse.bin")
    assert int(result.stdout) == TAIL
    growth_kib = _status(pid)["VmHWM"] - before  # the peak, not a sample
    assert growth_kib < 10 * 1024, f"server RSS peak grew by {growth_kib} KiB"


def test_a_client_leaving_closes_the_file(served: tuple[str, Path, int]) -> None:
    url, root, pid = served
    sparse = root / "sparse.bin"
    _wait_until_closed(pid, sparse)  # an earlier test's download may be finishing
    with httpx.Client(timeout=30) as client, client.stream(
            "GET", f"{url}/files/sparse.bin") as response:
        chunks = response.iter_bytes()  # kept: a dropped generator closes the response
        next(chunks)
        assert _open_copies(pid, sparse) == 1
    # Closing the response mid-body closes the connection; the server
    # notices and the driver closes the body, and with it the file.
    _wait_until_closed(pid, sparse)


def _wait_until_closed(pid: int, path: Path) -> None:
    deadline = time.monotonic() + 10
    while _open_copies(pid, path) and time.monotonic() < deadline:
        time.sleep(0.01)  # polling /proc against a deadline, not a guess
    assert _open_copies(pid, path) == 0


def test_csv_export_streams(served: tuple[str, Path, int]) -> None:
    with httpx.Client(timeout=30) as client, client.stream(
            "GET", f"{served[0]}/export.csv?rows=20000") as response:
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert "content-length" not in response.headers  # streamed, chunked
        chunks = list(response.iter_raw())
    text = b"".join(chunks).decode()
    lines = text.split("\r\n")
    assert lines[0] == "id,name,amount" and lines[20000] == "19999,customer 19999,29998.50"
    assert len(chunks) > 1


def test_zip_built_on_the_fly(served: tuple[str, Path, int]) -> None:
    url, root, _ = served
    body = httpx.get(f"{url}/bundle.zip?names=data.bin,notes.txt", timeout=60).content
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None  # every CRC checks
        assert archive.namelist() == ["data.bin", "notes.txt"]
        assert archive.read("data.bin") == DATA
        assert archive.read("notes.txt") == (root / "notes.txt").read_bytes()


def test_zip_of_a_large_file_in_constant_memory_and_no_temporary_file(
        served: tuple[str, Path, int]) -> None:
    url, root, pid = served
    big = root / "big.bin"
    if not big.exists():
        with open(big, "wb") as f:  # 64 MiB of random bytes: deflate cannot shrink them
            for _ in range(64):
                f.write(os.urandom(1024 * 1024))
    before = _status(pid)["VmHWM"]
    size = 0
    with httpx.stream("GET", f"{url}/bundle.zip?names=big.bin", timeout=60) as response:
        for chunk in response.iter_raw():
            if not size:  # while it streams: the only file open is the source
                assert _open_files(pid, root) == [str(big)]
            size += len(chunk)
    assert size > 64 * 1024 * 1024
    growth_kib = _status(pid)["VmHWM"] - before
    assert growth_kib < 10 * 1024, f"server RSS peak grew by {growth_kib} KiB"


def _open_files(pid: int, root: Path) -> list[str]:
    """Regular files process ``pid`` has open, other than its own modules."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("/") and not target.startswith(("/dev/", "/proc/")) \
                    and os.path.isfile(target):
                found.append(target)
    return sorted(found)


def test_paths_stay_inside_the_directory(served: tuple[str, Path, int]) -> None:
    url = served[0]
    for name in ("..%2F..%2Fetc%2Fpasswd", ".hidden", "missing"):
        assert httpx.get(f"{url}/files/{name}", timeout=10).status_code == 404
